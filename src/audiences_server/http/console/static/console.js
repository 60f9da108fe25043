var ue,w,Me,Pt,K,Oe,je,Be,We,ke,ve,ye,At,oe={},Ve=[],Tt=/acit|ex(?:s|g|n|p|$)|rph|grid|ows|mnc|ntw|ine[ch]|zoo|^ord|itera/i,pe=Array.isArray;function W(e,t){for(var n in t)e[n]=t[n];return e}function xe(e){e&&e.parentNode&&e.parentNode.removeChild(e)}function fe(e,t,n){var r,i,o,a={};for(o in t)o=="key"?r=t[o]:o=="ref"?i=t[o]:a[o]=t[o];if(arguments.length>2&&(a.children=arguments.length>3?ue.call(arguments,2):n),typeof e=="function"&&e.defaultProps!=null)for(o in e.defaultProps)a[o]===void 0&&(a[o]=e.defaultProps[o]);return ce(e,a,r,i,null)}function ce(e,t,n,r,i){var o={type:e,props:t,key:n,ref:r,__k:null,__:null,__b:0,__e:null,__c:null,constructor:void 0,__v:i??++Me,__i:-1,__u:0};return i==null&&w.vnode!=null&&w.vnode(o),o}function _e(e){return e.children}function ne(e,t){this.props=e,this.context=t}function Z(e,t){if(t==null)return e.__?Z(e.__,e.__i+1):null;for(var n;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null)return n.__e;return typeof e.type=="function"?Z(e):null}function qe(e){var t,n;if((e=e.__)!=null&&e.__c!=null){for(e.__e=e.__c.base=null,t=0;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null){e.__e=e.__c.base=n.__e;break}return qe(e)}}function Le(e){(!e.__d&&(e.__d=!0)&&K.push(e)&&!de.__r++||Oe!==w.debounceRendering)&&((Oe=w.debounceRendering)||je)(de)}function de(){for(var e,t,n,r,i,o,a,d=1;K.length;)K.length>d&&K.sort(Be),e=K.shift(),d=K.length,e.__d&&(n=void 0,i=(r=(t=e).__v).__e,o=[],a=[],t.__P&&((n=W({},r)).__v=r.__v+1,w.vnode&&w.vnode(n),we(t.__P,n,r,t.__n,t.__P.namespaceURI,32&r.__u?[i]:null,o,i??Z(r),!!(32&r.__u),a),n.__v=r.__v,n.__.__k[n.__i]=n,Ge(o,n,a),n.__e!=i&&qe(n)));de.__r=0}function Je(e,t,n,r,i,o,a,d,s,u,f){var l,_,m,p,h,$,b=r&&r.__k||Ve,y=t.length;for(s=zt(n,t,b,s,y),l=0;l<y;l++)(m=n.__k[l])!=null&&(_=m.__i===-1?oe:b[m.__i]||oe,m.__i=l,$=we(e,m,_,i,o,a,d,s,u,f),p=m.__e,m.ref&&_.ref!=m.ref&&(_.ref&&Ce(_.ref,null,m),f.push(m.ref,m.__c||p,m)),h==null&&p!=null&&(h=p),4&m.__u||_.__k===m.__k?s=Ke(m,s,e):typeof m.type=="function"&&$!==void 0?s=$:p&&(s=p.nextSibling),m.__u&=-7);return n.__e=h,s}function zt(e,t,n,r,i){var o,a,d,s,u,f=n.length,l=f,_=0;for(e.__k=new Array(i),o=0;o<i;o++)(a=t[o])!=null&&typeof a!="boolean"&&typeof a!="function"?(s=o+_,(a=e.__k[o]=typeof a=="string"||typeof a=="number"||typeof a=="bigint"||a.constructor==String?ce(null,a,null,null,null):pe(a)?ce(_e,{children:a},null,null,null):a.constructor===void 0&&a.__b>0?ce(a.type,a.props,a.key,a.ref?a.ref:null,a.__v):a).__=e,a.__b=e.__b+1,d=null,(u=a.__i=Ut(a,n,s,l))!==-1&&(l--,(d=n[u])&&(d.__u|=2)),d==null||d.__v===null?(u==-1&&(i>f?_--:i<f&&_++),typeof a.type!="function"&&(a.__u|=4)):u!=s&&(u==s-1?_--:u==s+1?_++:(u>s?_--:_++,a.__u|=4))):e.__k[o]=null;if(l)for(o=0;o<f;o++)(d=n[o])!=null&&(2&d.__u)==0&&(d.__e==r&&(r=Z(d)),Ze(d,d));return r}function Ke(e,t,n){var r,i;if(typeof e.type=="function"){for(r=e.__k,i=0;r&&i<r.length;i++)r[i]&&(r[i].__=e,t=Ke(r[i],t,n));return t}e.__e!=t&&(t&&e.type&&!n.contains(t)&&(t=Z(e)),n.insertBefore(e.__e,t||null),t=e.__e);do t=t&&t.nextSibling;while(t!=null&&t.nodeType==8);return t}function Ut(e,t,n,r){var i,o,a=e.key,d=e.type,s=t[n];if(s===null&&e.key==null||s&&a==s.key&&d===s.type&&(2&s.__u)==0)return n;if(r>(s!=null&&(2&s.__u)==0?1:0))for(i=n-1,o=n+1;i>=0||o<t.length;){if(i>=0){if((s=t[i])&&(2&s.__u)==0&&a==s.key&&d===s.type)return i;i--}if(o<t.length){if((s=t[o])&&(2&s.__u)==0&&a==s.key&&d===s.type)return o;o++}}return-1}function Fe(e,t,n){t[0]=="-"?e.setProperty(t,n??""):e[t]=n==null?"":typeof n!="number"||Tt.test(t)?n:n+"px"}function le(e,t,n,r,i){var o;e:if(t=="style")if(typeof n=="string")e.style.cssText=n;else{if(typeof r=="string"&&(e.style.cssText=r=""),r)for(t in r)n&&t in n||Fe(e.style,t,"");if(n)for(t in n)r&&n[t]===r[t]||Fe(e.style,t,n[t])}else if(t[0]=="o"&&t[1]=="n")o=t!=(t=t.replace(We,"$1")),t=t.toLowerCase()in e||t=="onFocusOut"||t=="onFocusIn"?t.toLowerCase().slice(2):t.slice(2),e.l||(e.l={}),e.l[t+o]=n,n?r?n.t=r.t:(n.t=ke,e.addEventListener(t,o?ye:ve,o)):e.removeEventListener(t,o?ye:ve,o);else{if(i=="http://www.w3.org/2000/svg")t=t.replace(/xlink(H|:h)/,"h").replace(/sName$/,"s");else if(t!="width"&&t!="height"&&t!="href"&&t!="list"&&t!="form"&&t!="tabIndex"&&t!="download"&&t!="rowSpan"&&t!="colSpan"&&t!="role"&&t!="popover"&&t in e)try{e[t]=n??"";break e}catch{}typeof n=="function"||(n==null||n===!1&&t[4]!="-"?e.removeAttribute(t):e.setAttribute(t,t=="popover"&&n==1?"":n))}}function He(e){return function(t){if(this.l){var n=this.l[t.type+e];if(t.u==null)t.u=ke++;else if(t.u<n.t)return;return n(w.event?w.event(t):t)}}}function we(e,t,n,r,i,o,a,d,s,u){var f,l,_,m,p,h,$,b,y,T,F,Y,j,V,R,B,J,z=t.type;if(t.constructor!==void 0)return null;128&n.__u&&(s=!!(32&n.__u),o=[d=t.__e=n.__e]),(f=w.__b)&&f(t);e:if(typeof z=="function")try{if(b=t.props,y="prototype"in z&&z.prototype.render,T=(f=z.contextType)&&r[f.__c],F=f?T?T.props.value:f.__:r,n.__c?$=(l=t.__c=n.__c).__=l.__E:(y?t.__c=l=new z(b,F):(t.__c=l=new ne(b,F),l.constructor=z,l.render=Ot),T&&T.sub(l),l.props=b,l.state||(l.state={}),l.context=F,l.__n=r,_=l.__d=!0,l.__h=[],l._sb=[]),y&&l.__s==null&&(l.__s=l.state),y&&z.getDerivedStateFromProps!=null&&(l.__s==l.state&&(l.__s=W({},l.__s)),W(l.__s,z.getDerivedStateFromProps(b,l.__s))),m=l.props,p=l.state,l.__v=t,_)y&&z.getDerivedStateFromProps==null&&l.componentWillMount!=null&&l.componentWillMount(),y&&l.componentDidMount!=null&&l.__h.push(l.componentDidMount);else{if(y&&z.getDerivedStateFromProps==null&&b!==m&&l.componentWillReceiveProps!=null&&l.componentWillReceiveProps(b,F),!l.__e&&(l.shouldComponentUpdate!=null&&l.shouldComponentUpdate(b,l.__s,F)===!1||t.__v==n.__v)){for(t.__v!=n.__v&&(l.props=b,l.state=l.__s,l.__d=!1),t.__e=n.__e,t.__k=n.__k,t.__k.some(function(q){q&&(q.__=t)}),Y=0;Y<l._sb.length;Y++)l.__h.push(l._sb[Y]);l._sb=[],l.__h.length&&a.push(l);break e}l.componentWillUpdate!=null&&l.componentWillUpdate(b,l.__s,F),y&&l.componentDidUpdate!=null&&l.__h.push(function(){l.componentDidUpdate(m,p,h)})}if(l.context=F,l.props=b,l.__P=e,l.__e=!1,j=w.__r,V=0,y){for(l.state=l.__s,l.__d=!1,j&&j(t),f=l.render(l.props,l.state,l.context),R=0;R<l._sb.length;R++)l.__h.push(l._sb[R]);l._sb=[]}else do l.__d=!1,j&&j(t),f=l.render(l.props,l.state,l.context),l.state=l.__s;while(l.__d&&++V<25);l.state=l.__s,l.getChildContext!=null&&(r=W(W({},r),l.getChildContext())),y&&!_&&l.getSnapshotBeforeUpdate!=null&&(h=l.getSnapshotBeforeUpdate(m,p)),B=f,f!=null&&f.type===_e&&f.key==null&&(B=Ye(f.props.children)),d=Je(e,pe(B)?B:[B],t,n,r,i,o,a,d,s,u),l.base=t.__e,t.__u&=-161,l.__h.length&&a.push(l),$&&(l.__E=l.__=null)}catch(q){if(t.__v=null,s||o!=null)if(q.then){for(t.__u|=s?160:128;d&&d.nodeType==8&&d.nextSibling;)d=d.nextSibling;o[o.indexOf(d)]=null,t.__e=d}else for(J=o.length;J--;)xe(o[J]);else t.__e=n.__e,t.__k=n.__k;w.__e(q,t,n)}else o==null&&t.__v==n.__v?(t.__k=n.__k,t.__e=n.__e):d=t.__e=Rt(n.__e,t,n,r,i,o,a,s,u);return(f=w.diffed)&&f(t),128&t.__u?void 0:d}function Ge(e,t,n){for(var r=0;r<n.length;r++)Ce(n[r],n[++r],n[++r]);w.__c&&w.__c(t,e),e.some(function(i){try{e=i.__h,i.__h=[],e.some(function(o){o.call(i)})}catch(o){w.__e(o,i.__v)}})}function Ye(e){return typeof e!="object"||e==null?e:pe(e)?e.map(Ye):W({},e)}function Rt(e,t,n,r,i,o,a,d,s){var u,f,l,_,m,p,h,$=n.props,b=t.props,y=t.type;if(y=="svg"?i="http://www.w3.org/2000/svg":y=="math"?i="http://www.w3.org/1998/Math/MathML":i||(i="http://www.w3.org/1999/xhtml"),o!=null){for(u=0;u<o.length;u++)if((m=o[u])&&"setAttribute"in m==!!y&&(y?m.localName==y:m.nodeType==3)){e=m,o[u]=null;break}}if(e==null){if(y==null)return document.createTextNode(b);e=document.createElementNS(i,y,b.is&&b),d&&(w.__m&&w.__m(t,o),d=!1),o=null}if(y===null)$===b||d&&e.data===b||(e.data=b);else{if(o=o&&ue.call(e.childNodes),$=n.props||oe,!d&&o!=null)for($={},u=0;u<e.attributes.length;u++)$[(m=e.attributes[u]).name]=m.value;for(u in $)if(m=$[u],u!="children"){if(u=="dangerouslySetInnerHTML")l=m;else if(!(u in b)){if(u=="value"&&"defaultValue"in b||u=="checked"&&"defaultChecked"in b)continue;le(e,u,null,m,i)}}for(u in b)m=b[u],u=="children"?_=m:u=="dangerouslySetInnerHTML"?f=m:u=="value"?p=m:u=="checked"?h=m:d&&typeof m!="function"||$[u]===m||le(e,u,m,$[u],i);if(f)d||l&&(f.__html===l.__html||f.__html===e.innerHTML)||(e.innerHTML=f.__html),t.__k=[];else if(l&&(e.innerHTML=""),Je(t.type==="template"?e.content:e,pe(_)?_:[_],t,n,r,y=="foreignObject"?"http://www.w3.org/1999/xhtml":i,o,a,o?o[0]:n.__k&&Z(n,0),d,s),o!=null)for(u=o.length;u--;)xe(o[u]);d||(u="value",y=="progress"&&p==null?e.removeAttribute("value"):p!==void 0&&(p!==e[u]||y=="progress"&&!p||y=="option"&&p!==$[u])&&le(e,u,p,$[u],i),u="checked",h!==void 0&&h!==e[u]&&le(e,u,h,$[u],i))}return e}function Ce(e,t,n){try{if(typeof e=="function"){var r=typeof e.__u=="function";r&&e.__u(),r&&t==null||(e.__u=e(t))}else e.current=t}catch(i){w.__e(i,n)}}function Ze(e,t,n){var r,i;if(w.unmount&&w.unmount(e),(r=e.ref)&&(r.current&&r.current!==e.__e||Ce(r,null,t)),(r=e.__c)!=null){if(r.componentWillUnmount)try{r.componentWillUnmount()}catch(o){w.__e(o,t)}r.base=r.__P=null}if(r=e.__k)for(i=0;i<r.length;i++)r[i]&&Ze(r[i],t,n||typeof e.type!="function");n||xe(e.__e),e.__c=e.__=e.__e=void 0}function Ot(e,t,n){return this.constructor(e,n)}function Se(e,t,n){var r,i,o,a;t==document&&(t=document.documentElement),w.__&&w.__(e,t),i=(r=typeof n=="function")?null:n&&n.__k||t.__k,o=[],a=[],we(t,e=(!r&&n||t).__k=fe(_e,null,[e]),i||oe,oe,t.namespaceURI,!r&&n?[n]:i?null:t.firstChild?ue.call(t.childNodes):null,o,!r&&n?n:i?i.__e:t.firstChild,r,a),Ge(o,e,a)}ue=Ve.slice,w={__e:function(e,t,n,r){for(var i,o,a;t=t.__;)if((i=t.__c)&&!i.__)try{if((o=i.constructor)&&o.getDerivedStateFromError!=null&&(i.setState(o.getDerivedStateFromError(e)),a=i.__d),i.componentDidCatch!=null&&(i.componentDidCatch(e,r||{}),a=i.__d),a)return i.__E=i}catch(d){e=d}throw e}},Me=0,Pt=function(e){return e!=null&&e.constructor==null},ne.prototype.setState=function(e,t){var n;n=this.__s!=null&&this.__s!==this.state?this.__s:this.__s=W({},this.state),typeof e=="function"&&(e=e(W({},n),this.props)),e&&W(n,e),e!=null&&this.__v&&(t&&this._sb.push(t),Le(this))},ne.prototype.forceUpdate=function(e){this.__v&&(this.__e=!0,e&&this.__h.push(e),Le(this))},ne.prototype.render=_e,K=[],je=typeof Promise=="function"?Promise.prototype.then.bind(Promise.resolve()):setTimeout,Be=function(e,t){return e.__v.__b-t.__v.__b},de.__r=0,We=/(PointerCapture)$|Capture$/i,ke=0,ve=He(!1),ye=He(!0),At=0;var re,S,Ee,Qe,he=0,at=[],E=w,Xe=E.__b,et=E.__r,tt=E.diffed,nt=E.__c,ot=E.unmount,rt=E.__;function Ne(e,t){E.__h&&E.__h(S,e,he||t),he=0;var n=S.__H||(S.__H={__:[],__h:[]});return e>=n.__.length&&n.__.push({}),n.__[e]}function g(e){return he=1,Lt(lt,e)}function Lt(e,t,n){var r=Ne(re++,2);if(r.t=e,!r.__c&&(r.__=[n?n(t):lt(void 0,t),function(d){var s=r.__N?r.__N[0]:r.__[0],u=r.t(s,d);s!==u&&(r.__N=[u,r.__[1]],r.__c.setState({}))}],r.__c=S,!S.__f)){var i=function(d,s,u){if(!r.__c.__H)return!0;var f=r.__c.__H.__.filter(function(_){return!!_.__c});if(f.every(function(_){return!_.__N}))return!o||o.call(this,d,s,u);var l=r.__c.props!==d;return f.forEach(function(_){if(_.__N){var m=_.__[0];_.__=_.__N,_.__N=void 0,m!==_.__[0]&&(l=!0)}}),o&&o.call(this,d,s,u)||l};S.__f=!0;var o=S.shouldComponentUpdate,a=S.componentWillUpdate;S.componentWillUpdate=function(d,s,u){if(this.__e){var f=o;o=void 0,i(d,s,u),o=f}a&&a.call(this,d,s,u)},S.shouldComponentUpdate=i}return r.__N||r.__}function I(e,t){var n=Ne(re++,3);!E.__s&&st(n.__H,t)&&(n.__=e,n.u=t,S.__H.__h.push(n))}function O(e){return he=5,Ft(function(){return{current:e}},[])}function Ft(e,t){var n=Ne(re++,7);return st(n.__H,t)&&(n.__=e(),n.__H=t,n.__h=e),n.__}function Ht(){for(var e;e=at.shift();)if(e.__P&&e.__H)try{e.__H.__h.forEach(me),e.__H.__h.forEach(Ie),e.__H.__h=[]}catch(t){e.__H.__h=[],E.__e(t,e.__v)}}E.__b=function(e){S=null,Xe&&Xe(e)},E.__=function(e,t){e&&t.__k&&t.__k.__m&&(e.__m=t.__k.__m),rt&&rt(e,t)},E.__r=function(e){et&&et(e),re=0;var t=(S=e.__c).__H;t&&(Ee===S?(t.__h=[],S.__h=[],t.__.forEach(function(n){n.__N&&(n.__=n.__N),n.u=n.__N=void 0})):(t.__h.forEach(me),t.__h.forEach(Ie),t.__h=[],re=0)),Ee=S},E.diffed=function(e){tt&&tt(e);var t=e.__c;t&&t.__H&&(t.__H.__h.length&&(at.push(t)!==1&&Qe===E.requestAnimationFrame||((Qe=E.requestAnimationFrame)||Mt)(Ht)),t.__H.__.forEach(function(n){n.u&&(n.__H=n.u),n.u=void 0})),Ee=S=null},E.__c=function(e,t){t.some(function(n){try{n.__h.forEach(me),n.__h=n.__h.filter(function(r){return!r.__||Ie(r)})}catch(r){t.some(function(i){i.__h&&(i.__h=[])}),t=[],E.__e(r,n.__v)}}),nt&&nt(e,t)},E.unmount=function(e){ot&&ot(e);var t,n=e.__c;n&&n.__H&&(n.__H.__.forEach(function(r){try{me(r)}catch(i){t=i}}),n.__H=void 0,t&&E.__e(t,n.__v))};var it=typeof requestAnimationFrame=="function";function Mt(e){var t,n=function(){clearTimeout(r),it&&cancelAnimationFrame(t),setTimeout(e)},r=setTimeout(n,100);it&&(t=requestAnimationFrame(n))}function me(e){var t=S,n=e.__c;typeof n=="function"&&(e.__c=void 0,n()),S=t}function Ie(e){var t=S;e.__c=e.__(),S=t}function st(e,t){return!e||e.length!==t.length||t.some(function(n,r){return n!==e[r]})}function lt(e,t){return typeof t=="function"?t(e):t}var De="audiences.console.token",M={get:()=>sessionStorage.getItem(De)||"",set:e=>sessionStorage.setItem(De,e),clear:()=>sessionStorage.removeItem(De)};function ct(e){let t=0;for(let n of e)if(t+=1,n<"!"||n>"~"){let r=n.codePointAt(0).toString(16).toUpperCase().padStart(4,"0"),i=n===" "?"a space":`U+${r}`;return`This is not a valid token: character ${t} is ${i}, which no token holds (a token is letters, digits and ASCII punctuation). Copy the token again.`}return""}var Q=class extends Error{constructor(t,n){super(n.message||`HTTP ${t}`),this.status=t,this.error=n}describe(){let{reason:t="",message:n=this.message}=this.error;return this.status===403?`Refused by the server (403 ${t}): ${n}`:this.status===401?`Not signed in (401 ${t}): ${n}`:`${n} (${t?`${this.status} ${t}`:this.status})`}},dt=()=>{};function ut(e){dt=e}async function $e(e,t,n){let r={Accept:"application/json"},i=M.get();i&&(r.Authorization=`Bearer ${i}`),n!==void 0&&(r["Content-Type"]="application/json");let o;try{o=await fetch(`/console/api${t}`,{method:e,headers:r,body:n===void 0?void 0:JSON.stringify(n),credentials:"omit",cache:"no-store"})}catch(s){throw new Q(0,{reason:"UNREACHABLE",message:`the server could not be reached: ${s.message}`})}let a=await o.text(),d={};try{d=a?JSON.parse(a):{}}catch{d={error:{message:a}}}if(!o.ok){let s=new Q(o.status,d.error||{});throw o.status===401&&dt(s),s}return d}var D=e=>$e("GET",e),G=(e,t)=>$e("POST",e,t??{}),ie=(e,t)=>$e("PATCH",e,t),pt=e=>$e("DELETE",e),X=e=>{let t=new URLSearchParams;for(let[r,i]of Object.entries(e))i!==""&&i!=null&&t.set(r,i);let n=t.toString();return n?`?${n}`:""};var _t=function(e,t,n,r){var i;t[0]=0;for(var o=1;o<t.length;o++){var a=t[o++],d=t[o]?(t[0]|=a?1:2,n[t[o++]]):t[++o];a===3?r[0]=d:a===4?r[1]=Object.assign(r[1]||{},d):a===5?(r[1]=r[1]||{})[t[++o]]=d:a===6?r[1][t[++o]]+=d+"":a?(i=e.apply(d,_t(e,d,n,["",null])),r.push(i),d[0]?t[0]|=2:(t[o-2]=0,t[o]=i)):r.push(d)}return r},ft=new Map;function mt(e){var t=ft.get(this);return t||(t=new Map,ft.set(this,t)),(t=_t(this,t.get(e)||(t.set(e,t=function(n){for(var r,i,o=1,a="",d="",s=[0],u=function(_){o===1&&(_||(a=a.replace(/^\s*\n\s*|\s*\n\s*$/g,"")))?s.push(0,_,a):o===3&&(_||a)?(s.push(3,_,a),o=2):o===2&&a==="..."&&_?s.push(4,_,0):o===2&&a&&!_?s.push(5,0,!0,a):o>=5&&((a||!_&&o===5)&&(s.push(o,0,a,i),o=6),_&&(s.push(o,_,0,i),o=6)),a=""},f=0;f<n.length;f++){f&&(o===1&&u(),u(f));for(var l=0;l<n[f].length;l++)r=n[f][l],o===1?r==="<"?(u(),s=[s],o=3):a+=r:o===4?a==="--"&&r===">"?(o=1,a=""):a=r+a[0]:d?r===d?d="":a+=r:r==='"'||r==="'"?d=r:r===">"?(u(),o=1):o&&(r==="="?(o=5,i=a,a=""):r==="/"&&(o<5||n[f][l+1]===">")?(u(),o===3&&(s=s[0]),o=s,(s=s[0]).push(2,0,o),o=0):r===" "||r==="	"||r===`
`||r==="\r"?(u(),o=2):a+=r),o===3&&a==="!--"&&(o=4,s=s[0])}return u(),s}(e)),t),arguments,[])).length>1?t:t[0]}var c=mt.bind(fe);var P=e=>e===void 0?"":JSON.stringify(e);function C(e){return e?e.replace("T"," ").replace(/\.\d+Z$/," UTC"):"—"}function be(e){return e==null?"—":e<1e3?`${e} ms`:e<12e4?`${(e/1e3).toFixed(1)} s`:e<72e5?`${Math.round(e/6e4)} min`:`${(e/36e5).toFixed(1)} h`}var L=e=>e instanceof Q?e.describe():String(e);function ee({notice:e}){if(!e)return null;let t=e.kind==="error";return c`<p class=${`notice ${t?"error":"ok"}`} role=${t?"alert":"status"}>${e.text}</p>`}function U(e,t,n=0){let[r,i]=g({data:null,error:null,loading:!0,deps:null}),o=O(0),a=JSON.stringify(t),d=async()=>{let u=++o.current;try{let f=await e();u===o.current&&i({data:f,error:null,loading:!1,deps:a})}catch(f){u===o.current&&i(l=>({data:l.deps===a?l.data:null,error:f,loading:!1,deps:a}))}};I(()=>{i(u=>({...u,loading:!0})),d()},t),I(()=>{if(!n)return;let u=setInterval(()=>{document.hidden||d()},n);return()=>clearInterval(u)},[...t,n]);let s=r.deps===a;return{data:s?r.data:null,error:s?r.error:null,loading:!s||r.loading,reload:d}}function Pe(e,t,n){I(()=>{let r=setTimeout(e,n);return()=>clearTimeout(r)},t)}function A({error:e}){return e?c`<p class="notice error" role="alert">${L(e)}</p>`:null}function ge({points:e,label:t,width:n=320,height:r=90}){if(!e||!e.length)return c`<p class="muted">No size history yet.</p>`;let i={left:34,right:6,top:8,bottom:18},o=e.map($=>$.size),a=Math.max(1,...o),d=Math.min(0,...o),s=n-i.left-i.right,u=r-i.top-i.bottom,f=$=>i.left+(e.length===1?s:$*s/(e.length-1)),l=$=>i.top+u-($-d)/(a-d||1)*u,_=e.map(($,b)=>`${f(b).toFixed(1)},${l($.size).toFixed(1)}`).join(" "),m=e[0].start.slice(5,16).replace("T"," "),p=e[e.length-1].start.slice(5,16).replace("T"," "),h=e[e.length-1].size;return c`
    <svg class="chart" viewBox=${`0 0 ${n} ${r}`} role="img" aria-label=${`${t}: size ${h} now, from ${m} to ${p}`}>
      <title>${t}</title>
      <line x1=${i.left} y1=${i.top+u} x2=${i.left+s} y2=${i.top+u} class="axis" />
      <line x1=${i.left} y1=${i.top} x2=${i.left} y2=${i.top+u} class="axis" />
      <text x=${i.left-4} y=${i.top+8} class="tick" text-anchor="end">${a}</text>
      <text x=${i.left-4} y=${i.top+u} class="tick" text-anchor="end">${d}</text>
      <text x=${i.left} y=${r-4} class="tick">${m}</text>
      <text x=${i.left+s} y=${r-4} class="tick" text-anchor="end">${p}</text>
      <polyline points=${_} class="series" />
      ${e.map(($,b)=>c`<circle cx=${f(b)} cy=${l($.size)} r="2" class="dot"><title>${`${$.start}: ${$.size} (+${$.entered} −${$.exited})`}</title></circle>`)}
    </svg>`}var Ae=e=>`/computations/${encodeURIComponent(e.collection)}/${encodeURIComponent(e.key)}`;function jt({c:e}){let{done:t,total:n}=e.backfill;return e.status!=="BACKFILLING"?c`<span class="muted">${n?`${t} / ${n}`:"—"}</span>`:c`<progress max=${n||1} value=${t} aria-label=${`${e.key} backfill`}>${t} / ${n}</progress>
    <span> ${t} / ${n}</span>`}function Bt({c:e,onChanged:t,setNotice:n}){let[r,i]=g(!1),o=async(s,u,f)=>{try{await f(),n({kind:"ok",text:`${e.key}: ${u}.`})}catch(l){n({kind:"error",text:`${e.key}: could not ${s}. ${L(l)}`})}i(!1),t()},a=()=>e.enabled?o("disable","disabled",()=>ie(Ae(e),{enabled:!1})):o("enable","enabled",()=>ie(Ae(e),{enabled:!0})),d=()=>o("delete","deleted",()=>pt(Ae(e)));return c`
    <tr data-key=${e.key}>
      <th scope="row"><a href=${`#/builder/${e.collection}/${encodeURIComponent(e.key)}`}>${e.name}</a>
        <div class="muted mono">${e.key}</div></th>
      <td>${e.kind==="audience"?"audience":"computed trait"}<div class="muted">${e.collection}</div></td>
      <td><span class=${`status s-${e.status.toLowerCase()}`}>${e.status}</span>
        ${e.error&&c`<div class="error-text">${e.error}</div>`}</td>
      <td class="num size">${e.size}</td>
      <td><${jt} c=${e} /></td>
      <td>${C(e.last_computed)}</td>
      <td class="chart-cell"><${ge} points=${e.sizes} label=${`${e.key} size, last 48 hours`} /></td>
      <td class="actions">
        <button type="button" onClick=${a}>${e.enabled?"Disable":"Enable"}<span class="sr"> ${e.key}</span></button>
        ${r?c`<button type="button" class="danger" onClick=${d}>Confirm delete<span class="sr"> ${e.key}</span></button>
                 <button type="button" onClick=${()=>i(!1)}>Keep</button>`:c`<button type="button" onClick=${()=>i(!0)}>Delete<span class="sr"> ${e.key}</span></button>`}
      </td>
    </tr>`}function ht(){let[e,t]=g(null),{data:n,error:r,reload:i}=U(()=>D("/computations?sizes=hourly"),[],2e3),o=n?n.computations:[];return c`
    <section aria-labelledby="list-title">
      <div class="title-row">
        <h1 id="list-title">Audiences and computed traits</h1>
        <a class="button" href="#/builder/new">New definition</a>
      </div>
      ${n&&c`<p class="muted">Evaluator clock: ${C(n.clock.now)}${n.clock.manual?" (manual)":""}</p>`}
      <${ee} notice=${e} />
      <${A} error=${r} />
      ${n&&!o.length&&c`<p>No definitions yet. <a href="#/builder/new">Write the first one</a>.</p>`}
      ${o.length>0&&c`
        <div class="table-wrap">
          <table class="computations">
            <caption class="sr">Each definition's status, size, backfill and size over time</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Status</th>
              <th scope="col">Size</th><th scope="col">Backfill</th><th scope="col">Last computed</th>
              <th scope="col">Size, 48 h</th><th scope="col">Actions</th></tr></thead>
            <tbody>${o.map(a=>c`<${Bt} key=${a.id} c=${a} onChanged=${i} setNotice=${t} />`)}</tbody>
          </table>
        </div>`}
    </section>`}var $t="event('Order Completed').within(30 days).count() >= 1",ae={include_anonymous_users:!1,include_historical_data:!0,backfill_days:0},Wt=["name","description","definition"],Vt=e=>({kind:e.kind,collection:e.collection,key:e.key,name:e.name,description:e.description,definition:e.definition,options:{...ae,...e.options},enabled:e.enabled});function bt(e,t){let n={};for(let o of Wt)e[o]!==t[o]&&(n[o]=e[o]);let r={...ae,...t.options},i=Object.fromEntries(Object.entries(e.options).filter(([o,a])=>a!==r[o]));return Object.keys(i).length&&(n.options=i),n}var ze="audiences.console.draft";function Te(e){sessionStorage.setItem(ze,JSON.stringify(e))}function qt(e,t){let n=null;try{n=JSON.parse(sessionStorage.getItem(ze)||"null")}catch{n=null}return!n||n.space!==e||n.target!==t?null:(sessionStorage.removeItem(ze),n)}var Jt=(e,t)=>e.definition===t.definition&&JSON.stringify({...ae,...e.options})===JSON.stringify({...ae,...t.options});function Kt({summary:e}){if(!e)return null;let t=[["Events",e.events],["Properties",e.properties],["Context",e.context_paths],["Traits",e.traits]],n=e.lookback_unbounded?"all history":e.lookback_ms?be(e.lookback_ms):"none";return c`
    <dl class="summary" aria-label="Dependency summary">
      ${t.map(([r,i])=>c`<dt>${r}</dt><dd>${i.length?i.join(", "):"—"}</dd>`)}
      <dt>Looks back</dt><dd>${n}</dd>
    </dl>`}function Gt({problem:e}){let[t]=e.message.split("; did you mean");return c`
    <div class="problem" role="alert" aria-live="assertive">
      <p><b>${e.reason}</b>${e.line?` at line ${e.line}, column ${e.column}`:""}: ${t}</p>
      ${e.caret_display&&c`<pre class="caret" aria-label="Where the error is">${e.caret_display}</pre>`}
      ${e.hint&&c`<p class="hint">Hint: ${e.hint}</p>`}
    </div>`}var Yt=e=>e?e.identifiers[0]||e.id:"(gone)";function gt({items:e,value:t=!0}){return e.length?c`<ul class="samples">${e.map(n=>c`
    <li><a href=${`#/profiles/${n.profile?.collection||"users"}/${encodeURIComponent(n.profile?.id||"")}`}>${Yt(n.profile)}</a>
      ${t&&n.value!==!0&&c` <span class="mono">${P(n.value)}</span>`}
      ${"old"in n&&c` <span class="mono muted">${P(n.old)} → ${P(n.new)}</span>`}</li>`)}</ul>`:c`<p class="muted">No sample.</p>`}function Zt({diff:e}){return c`
    <section class="diff" aria-labelledby="diff-title">
      <h3 id="diff-title">If saved, against ${e.compare_key} as stored</h3>
      <div class="columns">
        ${["entering","exiting","staying"].map(t=>c`
          <div class=${`outcome ${t}`} data-outcome=${t}>
            <h4>${t[0].toUpperCase()+t.slice(1)}: <span class="count">${e[t]}</span></h4>
            <${gt} items=${e.samples[t]||[]} value=${!1} />
          </div>`)}
      </div>
      ${e.changed>0&&c`<p>${e.changed} staying profiles would change value.</p>`}
    </section>`}function Qt({target:e,version:t,onRolledBack:n,setNotice:r}){let{data:i,error:o}=U(()=>D(`${e}/versions`),[e,t]),a=i&&i.versions.find(s=>s.current),d=async s=>{try{let{computation:u,changed:f}=await G(`${e}/rollback`,{version:s});r({kind:"ok",text:f.length?`Rolled back to version ${s}: saved as version ${u.version}; it is ${u.status}.`:`Version ${s} has the current text and options: nothing changed (still version ${u.version}, ${u.status}).`}),n()}catch(u){r({kind:"error",text:`Rollback failed. ${L(u)}`})}};return c`
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <${A} error=${o} />
      ${i&&c`<div class="table-wrap"><table>
        <thead><tr><th scope="col">Version</th><th scope="col">Saved</th><th scope="col">By</th>
          <th scope="col">Size after backfill</th><th scope="col">Definition</th><th scope="col"></th></tr></thead>
        <tbody>${i.versions.map(s=>c`<tr>
          <th scope="row">${s.version}${s.current?" (current)":""}</th><td>${C(s.created)}</td><td>${s.actor||"—"}</td>
          <td class="num">${s.size_after_backfill??"—"}</td><td><code>${s.definition}</code></td>
          <td>${s.current?"":a&&Jt(s,a)?c`<span class="muted">Same as current</span>`:c`<button type="button" onClick=${()=>d(s.version)}>Roll back to version ${s.version}</button>`}</td>
        </tr>`)}</tbody></table></div>`}
    </section>`}function Xt({target:e,version:t}){let[n,r]=g("hourly"),{data:i,error:o}=U(()=>D(`${e}/sizes?interval=${n}`),[e,n,t]),a=i?i.points.reduce((d,s)=>d+s.entered+s.exited,0):0;return c`
    <section aria-labelledby="sizes-title">
      <h2 id="sizes-title">Size over time</h2>
      <label for="size-interval">Interval</label>
      <select id="size-interval" value=${n} onChange=${d=>r(d.target.value)}>
        <option value="hourly">Hourly, last 48 hours</option><option value="daily">Daily, last 30 days</option></select>
      <${A} error=${o} />
      ${i&&c`<p>Size now <b>${i.size}</b>; ${a} entries and exits in the range shown.</p>
        <${ge} points=${i.points} label=${`${i.key} size, ${n}`} width=${640} height=${160} />`}
    </section>`}function vt({args:e,session:t}){let n=e.length===2,[r,i]=n?e:["users",""],o=`/computations/${encodeURIComponent(r)}/${encodeURIComponent(i)}`,[a,d]=g({kind:"audience",collection:"users",key:"",name:"",description:"",definition:n?"":$t,options:ae,enabled:!0}),[s,u]=g(null),[f,l]=g(""),[_,m]=g(null),[p,h]=g(null),[$,b]=g(!1),[y,T]=g(null),[F,Y]=g(null),j=O(0),V=O(0),R=v=>k=>d({...a,[v]:k.target.type==="checkbox"?k.target.checked:k.target.value}),B=v=>k=>d({...a,options:{...a.options,[v]:k.target.type==="checkbox"?k.target.checked:parseInt(k.target.value,10)||0}}),J=async(v=null,k="")=>{try{let{computation:x,etag:N}=await D(o);u(x),l(k||N);let H=Vt(x);return d(v?{...H,...v,options:{...H.options,...v.options||{}}}:H),!0}catch(x){return Y(x),!1}},z="Your edits from before you were signed out are back in the form; they are not saved yet.";I(()=>{j.current+=1,V.current+=1,h(null),b(!1),m(null),T(null);let v=qt(t.space,o);if(!n){v&&(d(v.form),T({kind:"ok",text:z}));return}J(v&&v.changed,v?v.etag:"").then(k=>{k&&v&&T({kind:"ok",text:z}),!k&&v&&(Te(v),T({kind:"error",text:`Your unsaved edits from before you were signed out could not be put back: ${Object.entries(v.changed).map(([x,N])=>`${x}: ${typeof N=="string"?N:JSON.stringify(N)}`).join("; ")}`}))})},[o]);let q=O(null);q.current={form:a,saved:s,etag:f},I(()=>()=>{let{form:v,saved:k,etag:x}=q.current;if(M.get())return;let N=n&&k?bt(v,k):{};n&&Object.keys(N).length&&Te({space:t.space,target:o,changed:N,etag:x}),!n&&(v.key!==""||v.definition!==$t)&&Te({space:t.space,target:o,form:v})},[o]),Pe(async()=>{let v=++j.current;if(!a.definition.trim()){m(null),V.current+=1,h(null),b(!1);return}let k;try{k=await G("/validate",{kind:a.kind,collection:a.collection,key:a.key,definition:a.definition})}catch(x){k={valid:!1,failure:x}}v===j.current&&(m(k),k.valid||(V.current+=1,h(null),b(!1)))},[a.definition,a.kind,a.collection,a.key],300);let se=async(v=n,k=!1)=>{let x=++V.current;b(!0);let N;try{N=await G("/preview",{kind:a.kind,collection:a.collection,definition:a.definition,options:a.options,sample_size:10,compare_key:v?i:""})}catch(H){N={failure:H}}x===V.current&&(h(k&&N.diff?{...N,diff:null}:N),b(!1))};Pe(()=>{_&&_.valid&&se()},[_,JSON.stringify(a.options)],400);let[Re,Nt]=g(0);I(()=>{Re&&_&&_.valid&&se()},[Re]);let Dt=async v=>{v.preventDefault();let k=n&&s?bt(a,s):{};try{if(n){if(!Object.keys(k).length){T({kind:"ok",text:"Nothing changed: not saved."});return}let{computation:x,etag:N}=await ie(o,{...k,etag:f});u(x),l(N),T({kind:"ok",text:`Saved ${x.key} as version ${x.version}; it is ${x.status}.`}),h(H=>H&&H.diff?{...H,diff:null}:H),se(!0,!0)}else{let{computation:x}=await G("/computations",{kind:a.kind,collection:a.collection,key:a.key,name:a.name,description:a.description,definition:a.definition,enabled:a.enabled,options:a.options});location.hash=`#/audiences/${encodeURIComponent(x.key)}`}}catch(x){if(x.status===409&&x.error.reason==="EDIT_CONFLICT"){h(null),await J(k),Nt(N=>N+1),T({kind:"error",text:`Not saved: ${i} was saved by someone else since you loaded it. The saved definition has been loaded again with your edits kept in the form; check the diff, then save again.`});return}T({kind:"error",text:`Not saved. ${L(x)}`}),x.error&&x.error.definition&&m({valid:!1,error:x.error.definition})}};return c`
    <section aria-labelledby="builder-title">
      <h1 id="builder-title">${n?`Edit ${i}`:"New audience or computed trait"}</h1>
      <${A} error=${F} />
      <form class="builder" onSubmit=${Dt}>
        <div class="fields">
          <label for="f-kind">Kind</label>
          <select id="f-kind" value=${a.kind} onChange=${R("kind")} disabled=${n}>
            <option value="audience">Audience</option><option value="computed_trait">Computed trait</option></select>
          <label for="f-collection">Collection</label>
          <select id="f-collection" value=${a.collection} onChange=${R("collection")} disabled=${n}>
            <option value="users">Users</option><option value="accounts">Accounts</option></select>
          <label for="f-key">Key</label>
          <input id="f-key" value=${a.key} onInput=${R("key")} readOnly=${n} required pattern="[a-z][a-z0-9_]*"
                 aria-describedby="f-key-help" />
          <span id="f-key-help" class="help">snake_case: a–z, 0–9 and _, starting with a letter; fixed once saved.</span>
          <label for="f-name">Name</label>
          <input id="f-name" value=${a.name} onInput=${R("name")} />
          <label for="f-description">Description</label>
          <input id="f-description" value=${a.description} onInput=${R("description")} />
          <label class="check"><input type="checkbox" checked=${a.options.include_anonymous_users}
            onChange=${B("include_anonymous_users")} /> Include anonymous users</label>
          <label class="check"><input type="checkbox" checked=${a.options.include_historical_data}
            onChange=${B("include_historical_data")} /> Include historical data</label>
          <label for="f-backfill-days">Backfill days</label>
          <input id="f-backfill-days" type="number" min="0" step="1" value=${a.options.backfill_days}
                 onInput=${B("backfill_days")} aria-describedby="f-backfill-help" />
          <span id="f-backfill-help" class="help">With historical data: only events from this many days before creation on (0: all).</span>
          ${!n&&c`<label class="check"><input type="checkbox" checked=${a.enabled} onChange=${R("enabled")} /> Enabled</label>`}
        </div>
        <label for="f-definition">Definition</label>
        <textarea id="f-definition" class="mono" rows="6" spellcheck=${!1} value=${a.definition}
                  onInput=${R("definition")} aria-describedby="validation"></textarea>
        <div id="validation" class="validation" aria-live="polite">
          ${_&&_.valid&&c`<p class="valid">Valid.</p>`}
          ${_&&_.error&&c`<${Gt} problem=${_.error} />`}
          ${_&&_.failure&&c`<${A} error=${_.failure} />`}
          ${_&&_.summary&&c`<h2>Reads</h2><${Kt} summary=${_.summary} />`}
        </div>
        <div class="buttons">
          <button type="button" onClick=${()=>se()} disabled=${$}>Preview</button>
          <button type="submit" class="primary">${n?"Save changes":"Save"}</button>
          ${n&&c`<a href="#/builder/new">New definition</a>`}
        </div>
        <${ee} notice=${y} />
      </form>
      <section class="preview" aria-labelledby="preview-title" aria-live="polite" aria-busy=${$}>
        <h2 id="preview-title">Preview</h2>
        ${!p&&c`<p class="muted">A valid definition is previewed over every profile as it stands now.</p>`}
        ${p&&p.failure&&c`<${A} error=${p.failure} />`}
        ${p&&!p.failure&&c`
          <p class="preview-count"><b class="count">${p.count}</b> ${a.kind==="audience"?"profiles match":"profiles have a value"} (evaluated ${C(p.evaluated)})</p>
          <${gt} items=${p.samples} />
          ${p.diff&&c`<${Zt} diff=${p.diff} />`}`}
      </section>
      ${n&&s&&c`<${Xt} target=${o} version=${s.version} />`}
      ${n&&s&&c`<${Qt} target=${o} version=${s.version} onRolledBack=${J} setNotice=${T} />`}
    </section>`}var en=50;function tn(e){return e.change.type==="changed"?c`changed <span class="mono">${P(e.change.old)} → ${P(e.change.new)}</span>`:e.change.type}function yt(e){let[t,n]=e.split("#")[0].split(/\?(.*)/s);return n===void 0?t:`${t}?${n.split("&").filter(r=>r.includes("=")).map(r=>`${r.split("=")[0]}=…`).join("&")}`}function nn(e){let t=e.config;return e.kind==="webhook"?yt(t.url||""):e.kind==="segment"?yt(t.base_url||""):e.kind==="csv"?t.directory:e.kind==="postgres"?`tables ${t.schema}.${t.table_prefix}<collection>_<key>`:e.kind==="grpc_feed"?"a change feed, read with ListChanges and WatchChanges":e.key}function on({items:e}){return e.length?c`<div class="table-wrap"><table class="connections">
    <thead><tr><th scope="col">Definition</th><th scope="col">Phase</th><th scope="col">Pending</th>
      <th scope="col">Delivered</th><th scope="col">Retrying</th><th scope="col">Dead</th><th scope="col">Lag</th>
      <th scope="col">Last delivery</th><th scope="col">Last failure</th></tr></thead>
    <tbody>${e.map(t=>c`<tr>
      <th scope="row">${t.computation.key} <span class="muted">${t.computation.collection}</span></th>
      <td>${t.phase}</td><td class="num">${t.pending}</td><td class="num">${t.delivered}</td>
      <td class="num">${t.retrying}</td><td class="num">${t.dead}</td><td>${be(t.lag_ms)}</td>
      <td>${C(t.last_delivery)}</td>
      <td>${t.last_error?c`<span class="error-text">${t.last_error}</span> <span class="muted">${C(t.last_error_at)}</span>`:"—"}</td>
    </tr>`)}</tbody></table></div>`:c`<p class="muted">Nothing connected.</p>`}function rn({destination:e,onRedriven:t,setNotice:n}){let[r,i]=g({letters:[],next:""}),[o,a]=g(null),d=e.dead_letters.map(p=>p.id).join(",");I(()=>{i({letters:[],next:""})},[e.key,d]);let s=[...e.dead_letters,...r.letters],u=r.letters.length?r.next:e.dead_letters_next,f=e.dead_letters_total,l=async()=>{try{let p=await D(`/destinations/${encodeURIComponent(e.key)}/dead-letters${X({after:u,limit:en})}`);i({letters:[...r.letters,...p.dead_letters],next:p.next}),a(null)}catch(p){a(p)}},_=p=>i(h=>({...h,letters:p.length?h.letters.filter($=>!p.includes($.id)):[]})),m=async p=>{try{let{redriven:h}=await G(`/destinations/${encodeURIComponent(e.key)}/redrive`,{ids:p});n({kind:"ok",text:`${e.key}: ${h} dead letter${h===1?"":"s"} put back in the queue.`}),_(p)}catch(h){n({kind:"error",text:`${e.key}: redrive failed. ${L(h)}`}),h.error&&h.error.reason==="DEAD_LETTER_NOT_FOUND"&&_(p)}t()};return c`
    <h3>Dead letters (${f})</h3>
    ${!s.length&&c`<p class="muted">None.</p>`}
    ${s.length>0&&s.length<f&&c`<p class="muted">Showing the oldest ${s.length} of ${f}.</p>`}
    ${s.length>0&&c`
      <button type="button" onClick=${()=>m([])}>Redrive all<span class="sr"> of ${e.key}</span></button>
      <div class="table-wrap"><table class="dead-letters">
        <thead><tr><th scope="col">Id</th><th scope="col">Definition</th><th scope="col">Change</th><th scope="col">Profile</th>
          <th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Parked</th><th scope="col"></th></tr></thead>
        <tbody>${s.map(p=>c`<tr data-id=${p.id}>
          <th scope="row" class="mono">${p.id}</th><td>${p.computation.key}</td><td class="change">${tn(p)}</td>
          <td><a href=${`#/profiles/${p.computation.collection}/${encodeURIComponent(p.profile_id)}`}>${p.profile_id}</a></td>
          <td class="num">${p.attempts}</td><td class="error-text">${p.last_error}</td><td>${C(p.dead_at)}</td>
          <td><button type="button" onClick=${()=>m([p.id])}>Redrive<span class="sr"> ${p.id}</span></button></td>
        </tr>`)}</tbody></table></div>
      ${u&&c`<button type="button" class="more" onClick=${l}>Show more<span class="sr"> dead letters of ${e.key}</span></button>`}
      <${A} error=${o} />`}`}function kt(){let[e,t]=g(null),{data:n,error:r,reload:i}=U(()=>D("/destinations"),[],3e3),o=n?n.destinations:[];return c`
    <section aria-labelledby="destinations-title">
      <div class="title-row">
        <h1 id="destinations-title">Destinations</h1>
        <button type="button" onClick=${i}>Refresh</button>
      </div>
      <${ee} notice=${e} />
      <${A} error=${r} />
      ${n&&!o.length&&c`<p>No destinations. Create one with <code>audiences destinations create</code>.</p>`}
      ${o.map(a=>c`
        <article class="destination" data-key=${a.key} aria-labelledby=${`d-${a.key}`}>
          <h2 id=${`d-${a.key}`}>${a.name||a.key} <span class="muted">${a.kind}${a.enabled?"":" · disabled"}</span></h2>
          <p class="muted mono address">${nn(a)}</p>
          <h3>Connections</h3>
          <${on} items=${a.connections} />
          <${rn} destination=${a} onRedriven=${i} setNotice=${t} />
        </article>`)}
    </section>`}function an({stream:e}){return c`
    <div class="stream">
      <p><b>${e.event}</b>: ${e.seen} seen, ${e.count} kept</p>
      ${e.filters.length>0&&c`<ol class="filters">${e.filters.map(t=>c`
        <li><code>${t.filter}</code> leaves ${t.remaining}</li>`)}</ol>`}
      ${e.events.length>0&&c`<div class="table-wrap"><table class="evidence">
        <thead><tr><th scope="col">Time</th><th scope="col">Message</th><th scope="col">Value</th><th scope="col">Read</th></tr></thead>
        <tbody>${e.events.map(t=>c`<tr>
          <td>${C(t.timestamp)}</td><td class="mono">${t.message_id}</td><td class="mono">${P(t.value)}</td>
          <td class="mono">${Object.entries(t.read).map(([n,r])=>`${n} = ${P(r)}`).join("; ")}</td></tr>`)}
        </tbody></table></div>`}
    </div>`}function Ue({node:e}){let t=e.value===!0?"holds":e.value===!1?"fails":"value";return c`
    <li class=${`node ${t}`}>
      <span class="verdict">${e.value===!0?"✓":e.value===!1?"✗":"="}</span>
      <code>${e.text}</code> <span class="mono value">${P(e.value)}</span>
      ${e.trait&&c` <span class="muted">(${e.trait.class.replace("_"," ")} ${e.trait.key})</span>`}
      ${e.stream&&c`<${an} stream=${e.stream} />`}
      ${e.users&&c`<p class="muted">${e.users_satisfying} of ${e.users_total} linked users satisfy it</p>
        <ul>${e.users.map(n=>c`<li>${n.profile?.identifiers[0]||n.profile?.id}: ${n.satisfied?"yes":"no"}
          <ul class="tree"><${Ue} node=${n.node} /></ul></li>`)}</ul>`}
      ${e.children.length>0&&c`<ul class="tree">${e.children.map(n=>c`<${Ue} node=${n} />`)}</ul>`}
    </li>`}function xt({collection:e,definitionKey:t,address:n,onClose:r}){let i=O(null);I(()=>i.current?.focus(),[t,n]);let{data:o,error:a}=U(()=>D(`/explain/${encodeURIComponent(e)}/${encodeURIComponent(t)}${X({profile:n})}`),[e,t,n]);return c`
    <section class="explain" aria-labelledby="explain-title" tabindex="-1" ref=${i}>
      <div class="title-row">
        <h2 id="explain-title">Why: ${t}</h2>
        <button type="button" onClick=${r}>Close</button>
      </div>
      <${A} error=${a} />
      ${o&&c`
        <p>Value <b class="mono">${P(o.value)}</b> at ${C(o.at)}; stored <span class="mono">${P(o.stored)}</span>
          ${o.pending?" (waiting for a tick)":""}${o.anonymous_excluded?"; anonymous users are left out":""}</p>
        <pre class="definition">${o.definition.text}</pre>
        <ul class="tree root"><${Ue} node=${o.root} /></ul>
        <p class="next">${o.next_change.summary}</p>`}
    </section>`}var wt=(e,t,n,r={})=>D(`/profiles/${e}/${n}${X({address:t,...r})}`);function te({collection:e,address:t,name:n,params:r={},render:i,title:o}){let[a,d]=g([""]),s=a[a.length-1],u=JSON.stringify(r);I(()=>d([""]),[e,t,u]);let{data:f,error:l}=U(()=>wt(e,t,n,{...r,next:s}),[e,t,u,s]);return c`
    <section class="part" aria-label=${o}>
      <${A} error=${l} />
      ${f&&(f.items.length?i(f.items):c`<p class="muted">None.</p>`)}
      <div class="pager">
        ${a.length>1&&c`<button type="button" onClick=${()=>d(a.slice(0,-1))}>Previous page</button>`}
        ${f&&f.next&&c`<button type="button" onClick=${()=>d([...a,f.next])}>Next page</button>`}
      </div>
    </section>`}function sn({collection:e,address:t}){let[n,r]=g("");return c`
    <h2>Traits</h2>
    <label for="trait-class">Class</label>
    <select id="trait-class" value=${n} onChange=${i=>r(i.target.value)}>
      <option value="">All</option><option value="custom">Custom</option>
      <option value="computed_trait">Computed</option><option value="audience">Audience</option></select>
    <${te} collection=${e} address=${t} name="traits" params=${{class:n,limit:50}} title="Traits"
      render=${i=>c`<div class="table-wrap"><table><thead><tr><th scope="col">Key</th><th scope="col">Value</th>
        <th scope="col">Class</th><th scope="col">Updated</th></tr></thead><tbody>${i.map(o=>c`
        <tr><th scope="row" class="mono">${o.key}</th><td class="mono">${P(o.value)}</td><td>${o.class.replace("_"," ")}</td>
          <td>${C(o.updated)}</td></tr>`)}</tbody></table></div>`} />`}var ln=Date.parse("9999-12-31T00:00:00Z"),cn=e=>e&&Date.parse(`${e}T00:00:00Z`)<ln?new Date(Date.parse(`${e}T00:00:00Z`)+864e5).toISOString().slice(0,10):"";function dn({collection:e,address:t}){let[n,r]=g({include:"",exclude:"",start:"",end:"",sort:"desc"}),[i,o]=g(n),a=d=>s=>r({...n,[d]:s.target.value});return c`
    <h2>Events</h2>
    <form class="filters-form" onSubmit=${d=>{d.preventDefault(),o(n)}}>
      <label>Only events <input value=${n.include} onInput=${a("include")} placeholder="Signed Up, Order Completed" /></label>
      <label>Except <input value=${n.exclude} onInput=${a("exclude")} /></label>
      <label>From (UTC) <input type="date" value=${n.start} onInput=${a("start")} /></label>
      <label>Until (UTC, that day included) <input type="date" value=${n.end} onInput=${a("end")} /></label>
      <label>Order <select value=${n.sort} onChange=${a("sort")}><option value="desc">Newest first</option>
        <option value="asc">Oldest first</option></select></label>
      <button type="submit">Filter events</button>
    </form>
    <${te} collection=${e} address=${t} name="events" params=${{...i,end:cn(i.end),limit:20}} title="Events"
      render=${d=>c`<ol class="events">${d.map(s=>c`<li>
        <b>${s.event||s.type}</b> <span class="muted">${s.type} · ${C(s.timestamp)} · ${s.message_id}</span>
        <details><summary>Properties and context</summary><pre class="mono">${s.properties}</pre><pre class="mono">${s.context}</pre></details>
      </li>`)}</ol>`} />`}function un(e){let t=e.indexOf(":");return t<0?e.trim():`${e.slice(0,t).trim()}${e.slice(t)}`}function Ct({args:e}){let[t="users",n=""]=e,[r,i]=g({collection:t,address:n}),[o,a]=g(null),d=O(`${t}/${n}`);I(()=>{d.current!==`${t}/${n}`&&(d.current=`${t}/${n}`,i({collection:t,address:n}),a(null))},[t,n]);let s=p=>{p.preventDefault(),location.hash=`#/profiles/${r.collection}/${encodeURIComponent(un(r.address))}`},u=n!=="",f=U(()=>u?wt(t,n,"metadata"):Promise.resolve(null),[t,n]),_=(U(()=>D("/computations"),[]).data?.computations||[]).filter(p=>p.collection===t),m={collection:t,address:n};return c`
    <section aria-labelledby="profiles-title">
      <h1 id="profiles-title">Profile explorer</h1>
      <form class="lookup" onSubmit=${s} role="search">
        <label for="p-collection">Collection</label>
        <select id="p-collection" value=${r.collection} onChange=${p=>i({...r,collection:p.target.value})}>
          <option value="users">Users</option><option value="accounts">Accounts</option></select>
        <label for="p-address">Profile (type:value or prf_…)</label>
        <input id="p-address" value=${r.address} required placeholder="email:ada@example.com"
               onInput=${p=>i({...r,address:p.target.value})} />
        <button type="submit">Find</button>
      </form>
      ${u&&c`
        <${A} error=${f.error} />
        ${f.data&&c`
          <p class="profile-head">Profile <b class="mono">${f.data.profile_id}</b> · created ${C(f.data.created)} ·
            last message ${C(f.data.last_message)}${f.data.merged.length?` · merged from ${f.data.merged.join(", ")}`:""}</p>
          ${o&&c`<${xt} collection=${t} definitionKey=${o} address=${n} onClose=${()=>a(null)} />`}
          <div class="grid">
            <div>
              <h2>Audiences</h2>
              <${te} ...${m} name="memberships" params=${{limit:50}} title="Audience memberships"
                render=${p=>c`<ul class="memberships">${p.map(h=>c`<li data-key=${h.key}>
                  <b>${h.name}</b> <span class="muted mono">${h.key}</span> · since ${C(h.entered)}
                  <button type="button" onClick=${()=>a(h.key)}>Why<span class="sr"> is this profile in ${h.key}</span></button></li>`)}</ul>`} />
              <form class="why-other" onSubmit=${p=>{p.preventDefault(),a(p.target.elements.other.value)}}>
                <label for="why-other">Explain any definition</label>
                <select id="why-other" name="other">${_.map(p=>c`<option value=${p.key}>${p.key}</option>`)}</select>
                <button type="submit" disabled=${!_.length}>Explain</button>
              </form>
              <h2>Membership history</h2>
              <${te} ...${m} name="history" params=${{limit:20}} title="Membership history"
                render=${p=>c`<ol class="history">${p.map(h=>c`<li>
                  ${C(h.at)} · <b>${h.change}</b> ${h.key} <span class="mono muted">${P(h.old)} → ${P(h.new)}</span></li>`)}</ol>`} />
              <h2>Identifiers</h2>
              <${te} ...${m} name="identifiers" params=${{limit:50}} title="Identifiers"
                render=${p=>c`<ul>${p.map(h=>c`<li class="mono">${h.type}:${h.value}
                  <span class="muted"> · ${C(h.added)}</span></li>`)}</ul>`} />
              <h2>Links</h2>
              <${te} ...${m} name="links" params=${{limit:50}} title="Linked profiles"
                render=${p=>c`<ul>${p.map(h=>c`<li>
                  <a href=${`#/profiles/${h.collection}/${encodeURIComponent(h.id)}`}>${h.identifiers[0]||h.id}</a>
                  <span class="muted"> · ${h.collection} · linked ${C(h.linked)}</span></li>`)}</ul>`} />
            </div>
            <div>
              <${sn} ...${m} />
              <${dn} ...${m} />
            </div>
          </div>`}`}
    </section>`}function St(){let e=location.hash.replace(/^#\/?/,"").split("/").map(decodeURIComponent);return{page:e[0]||"audiences",args:e.slice(1)}}function pn({onSession:e,reason:t}){let[n,r]=g(""),[i,o]=g(t||"");return c`
    <main class="signin">
      <h1>Audiences console</h1>
      <form onSubmit=${async d=>{d.preventDefault();let s=n.trim(),u=ct(s);if(u){o(u);return}M.set(s);try{e(await D("/session"))}catch(f){M.clear(),o(L(f))}}}>
        <label for="token">Token (admin, or read for read-only pages)</label>
        <input id="token" name="token" type="password" autocomplete="off" required value=${n}
               onInput=${d=>r(d.target.value)} />
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">The token stays in this tab (sessionStorage) and is sent only to this server.</p>
      ${i&&c`<p class="notice error" role="alert">${i}</p>`}
    </main>`}function fn(e){e.preventDefault(),document.getElementById("main")?.focus()}var Et=[["audiences","Audiences & traits"],["builder","Builder"],["profiles","Profiles"],["destinations","Destinations"]];function _n({session:e,onSignOut:t}){let[n,r]=g(St());I(()=>{let s=()=>r(St());return addEventListener("hashchange",s),()=>removeEventListener("hashchange",s)},[]);let{page:i,args:o}=n,a=O(!0);I(()=>{let s=(Et.find(([u])=>u===i)||[i,i])[1];if(document.title=`${s} · Audiences console`,a.current){a.current=!1;return}document.getElementById("main")?.focus()},[i,o.join("/")]);let d={audiences:()=>c`<${ht} session=${e} />`,builder:()=>c`<${vt} session=${e} args=${o} key=${o.join("/")} />`,profiles:()=>c`<${Ct} session=${e} args=${o} />`,destinations:()=>c`<${kt} session=${e} />`}[i];return c`
    <header class="top">
      <a class="skip" href="#main" onClick=${fn}>Skip to content</a>
      <strong class="brand">Audiences</strong>
      <nav aria-label="Pages">
        ${Et.map(([s,u])=>c`
          <a href=${`#/${s==="builder"?"builder/new":s}`} aria-current=${i===s?"page":void 0}>${u}</a>`)}
      </nav>
      <span class="who">Space <b>${e.space}</b> · <span class="scope">${e.scope}</span> token</span>
      <button type="button" class="link" onClick=${t}>Sign out</button>
    </header>
    ${!e.can_write&&c`
      <p class="banner" role="note">Signed in with a read token: these pages are read-only, and the server refuses any change.</p>`}
    <main id="main" tabindex="-1">${d?d():c`<p role="alert">No page ${i}.</p>`}</main>`}function mn(){let[e,t]=g(null),[n,r]=g(!!M.get()),[i,o]=g("");I(()=>{ut(d=>{M.clear(),t(null),o(L(d))}),M.get()&&D("/session").then(t,d=>o(L(d))).finally(()=>r(!1))},[]);let a=()=>{M.clear(),t(null),o("")};return n?c`<p>Checking the session…</p>`:e?c`<${_n} session=${e} onSignOut=${a} />`:c`<${pn} onSession=${t} reason=${i} />`}var It=document.getElementById("app");It.textContent="";Se(c`<${mn} />`,It);
