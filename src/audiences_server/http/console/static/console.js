var de,x,Fe,Nt,J,Ue,He,Me,je,ye,ve,ge,Dt,oe={},Be=[],Pt=/acit|ex(?:s|g|n|p|$)|rph|grid|ows|mnc|ntw|ine[ch]|zoo|^ord|itera/i,ue=Array.isArray;function B(e,t){for(var n in t)e[n]=t[n];return e}function ke(e){e&&e.parentNode&&e.parentNode.removeChild(e)}function pe(e,t,n){var r,i,o,a={};for(o in t)o=="key"?r=t[o]:o=="ref"?i=t[o]:a[o]=t[o];if(arguments.length>2&&(a.children=arguments.length>3?de.call(arguments,2):n),typeof e=="function"&&e.defaultProps!=null)for(o in e.defaultProps)a[o]===void 0&&(a[o]=e.defaultProps[o]);return le(e,a,r,i,null)}function le(e,t,n,r,i){var o={type:e,props:t,key:n,ref:r,__k:null,__:null,__b:0,__e:null,__c:null,constructor:void 0,__v:i??++Fe,__i:-1,__u:0};return i==null&&x.vnode!=null&&x.vnode(o),o}function fe(e){return e.children}function ne(e,t){this.props=e,this.context=t}function Z(e,t){if(t==null)return e.__?Z(e.__,e.__i+1):null;for(var n;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null)return n.__e;return typeof e.type=="function"?Z(e):null}function We(e){var t,n;if((e=e.__)!=null&&e.__c!=null){for(e.__e=e.__c.base=null,t=0;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null){e.__e=e.__c.base=n.__e;break}return We(e)}}function Re(e){(!e.__d&&(e.__d=!0)&&J.push(e)&&!ce.__r++||Ue!==x.debounceRendering)&&((Ue=x.debounceRendering)||He)(ce)}function ce(){for(var e,t,n,r,i,o,a,c=1;J.length;)J.length>c&&J.sort(Me),e=J.shift(),c=J.length,e.__d&&(n=void 0,i=(r=(t=e).__v).__e,o=[],a=[],t.__P&&((n=B({},r)).__v=r.__v+1,x.vnode&&x.vnode(n),xe(t.__P,n,r,t.__n,t.__P.namespaceURI,32&r.__u?[i]:null,o,i??Z(r),!!(32&r.__u),a),n.__v=r.__v,n.__.__k[n.__i]=n,Je(o,n,a),n.__e!=i&&We(n)));ce.__r=0}function Ve(e,t,n,r,i,o,a,c,l,u,p){var s,m,_,f,h,$,g=r&&r.__k||Be,b=t.length;for(l=At(n,t,g,l,b),s=0;s<b;s++)(_=n.__k[s])!=null&&(m=_.__i===-1?oe:g[_.__i]||oe,_.__i=s,$=xe(e,_,m,i,o,a,c,l,u,p),f=_.__e,_.ref&&m.ref!=_.ref&&(m.ref&&we(m.ref,null,_),p.push(_.ref,_.__c||f,_)),h==null&&f!=null&&(h=f),4&_.__u||m.__k===_.__k?l=qe(_,l,e):typeof _.type=="function"&&$!==void 0?l=$:f&&(l=f.nextSibling),_.__u&=-7);return n.__e=h,l}function At(e,t,n,r,i){var o,a,c,l,u,p=n.length,s=p,m=0;for(e.__k=new Array(i),o=0;o<i;o++)(a=t[o])!=null&&typeof a!="boolean"&&typeof a!="function"?(l=o+m,(a=e.__k[o]=typeof a=="string"||typeof a=="number"||typeof a=="bigint"||a.constructor==String?le(null,a,null,null,null):ue(a)?le(fe,{children:a},null,null,null):a.constructor===void 0&&a.__b>0?le(a.type,a.props,a.key,a.ref?a.ref:null,a.__v):a).__=e,a.__b=e.__b+1,c=null,(u=a.__i=Tt(a,n,l,s))!==-1&&(s--,(c=n[u])&&(c.__u|=2)),c==null||c.__v===null?(u==-1&&(i>p?m--:i<p&&m++),typeof a.type!="function"&&(a.__u|=4)):u!=l&&(u==l-1?m--:u==l+1?m++:(u>l?m--:m++,a.__u|=4))):e.__k[o]=null;if(s)for(o=0;o<p;o++)(c=n[o])!=null&&(2&c.__u)==0&&(c.__e==r&&(r=Z(c)),Ge(c,c));return r}function qe(e,t,n){var r,i;if(typeof e.type=="function"){for(r=e.__k,i=0;r&&i<r.length;i++)r[i]&&(r[i].__=e,t=qe(r[i],t,n));return t}e.__e!=t&&(t&&e.type&&!n.contains(t)&&(t=Z(e)),n.insertBefore(e.__e,t||null),t=e.__e);do t=t&&t.nextSibling;while(t!=null&&t.nodeType==8);return t}function Tt(e,t,n,r){var i,o,a=e.key,c=e.type,l=t[n];if(l===null&&e.key==null||l&&a==l.key&&c===l.type&&(2&l.__u)==0)return n;if(r>(l!=null&&(2&l.__u)==0?1:0))for(i=n-1,o=n+1;i>=0||o<t.length;){if(i>=0){if((l=t[i])&&(2&l.__u)==0&&a==l.key&&c===l.type)return i;i--}if(o<t.length){if((l=t[o])&&(2&l.__u)==0&&a==l.key&&c===l.type)return o;o++}}return-1}function Oe(e,t,n){t[0]=="-"?e.setProperty(t,n??""):e[t]=n==null?"":typeof n!="number"||Pt.test(t)?n:n+"px"}function se(e,t,n,r,i){var o;e:if(t=="style")if(typeof n=="string")e.style.cssText=n;else{if(typeof r=="string"&&(e.style.cssText=r=""),r)for(t in r)n&&t in n||Oe(e.style,t,"");if(n)for(t in n)r&&n[t]===r[t]||Oe(e.style,t,n[t])}else if(t[0]=="o"&&t[1]=="n")o=t!=(t=t.replace(je,"$1")),t=t.toLowerCase()in e||t=="onFocusOut"||t=="onFocusIn"?t.toLowerCase().slice(2):t.slice(2),e.l||(e.l={}),e.l[t+o]=n,n?r?n.t=r.t:(n.t=ye,e.addEventListener(t,o?ge:ve,o)):e.removeEventListener(t,o?ge:ve,o);else{if(i=="http://www.w3.org/2000/svg")t=t.replace(/xlink(H|:h)/,"h").replace(/sName$/,"s");else if(t!="width"&&t!="height"&&t!="href"&&t!="list"&&t!="form"&&t!="tabIndex"&&t!="download"&&t!="rowSpan"&&t!="colSpan"&&t!="role"&&t!="popover"&&t in e)try{e[t]=n??"";break e}catch{}typeof n=="function"||(n==null||n===!1&&t[4]!="-"?e.removeAttribute(t):e.setAttribute(t,t=="popover"&&n==1?"":n))}}function Le(e){return function(t){if(this.l){var n=this.l[t.type+e];if(t.u==null)t.u=ye++;else if(t.u<n.t)return;return n(x.event?x.event(t):t)}}}function xe(e,t,n,r,i,o,a,c,l,u){var p,s,m,_,f,h,$,g,b,q,L,W,O,F,V,j,te,A=t.type;if(t.constructor!==void 0)return null;128&n.__u&&(l=!!(32&n.__u),o=[c=t.__e=n.__e]),(p=x.__b)&&p(t);e:if(typeof A=="function")try{if(g=t.props,b="prototype"in A&&A.prototype.render,q=(p=A.contextType)&&r[p.__c],L=p?q?q.props.value:p.__:r,n.__c?$=(s=t.__c=n.__c).__=s.__E:(b?t.__c=s=new A(g,L):(t.__c=s=new ne(g,L),s.constructor=A,s.render=Ut),q&&q.sub(s),s.props=g,s.state||(s.state={}),s.context=L,s.__n=r,m=s.__d=!0,s.__h=[],s._sb=[]),b&&s.__s==null&&(s.__s=s.state),b&&A.getDerivedStateFromProps!=null&&(s.__s==s.state&&(s.__s=B({},s.__s)),B(s.__s,A.getDerivedStateFromProps(g,s.__s))),_=s.props,f=s.state,s.__v=t,m)b&&A.getDerivedStateFromProps==null&&s.componentWillMount!=null&&s.componentWillMount(),b&&s.componentDidMount!=null&&s.__h.push(s.componentDidMount);else{if(b&&A.getDerivedStateFromProps==null&&g!==_&&s.componentWillReceiveProps!=null&&s.componentWillReceiveProps(g,L),!s.__e&&(s.shouldComponentUpdate!=null&&s.shouldComponentUpdate(g,s.__s,L)===!1||t.__v==n.__v)){for(t.__v!=n.__v&&(s.props=g,s.state=s.__s,s.__d=!1),t.__e=n.__e,t.__k=n.__k,t.__k.some(function(H){H&&(H.__=t)}),W=0;W<s._sb.length;W++)s.__h.push(s._sb[W]);s._sb=[],s.__h.length&&a.push(s);break e}s.componentWillUpdate!=null&&s.componentWillUpdate(g,s.__s,L),b&&s.componentDidUpdate!=null&&s.__h.push(function(){s.componentDidUpdate(_,f,h)})}if(s.context=L,s.props=g,s.__P=e,s.__e=!1,O=x.__r,F=0,b){for(s.state=s.__s,s.__d=!1,O&&O(t),p=s.render(s.props,s.state,s.context),V=0;V<s._sb.length;V++)s.__h.push(s._sb[V]);s._sb=[]}else do s.__d=!1,O&&O(t),p=s.render(s.props,s.state,s.context),s.state=s.__s;while(s.__d&&++F<25);s.state=s.__s,s.getChildContext!=null&&(r=B(B({},r),s.getChildContext())),b&&!m&&s.getSnapshotBeforeUpdate!=null&&(h=s.getSnapshotBeforeUpdate(_,f)),j=p,p!=null&&p.type===fe&&p.key==null&&(j=Ke(p.props.children)),c=Ve(e,ue(j)?j:[j],t,n,r,i,o,a,c,l,u),s.base=t.__e,t.__u&=-161,s.__h.length&&a.push(s),$&&(s.__E=s.__=null)}catch(H){if(t.__v=null,l||o!=null)if(H.then){for(t.__u|=l?160:128;c&&c.nodeType==8&&c.nextSibling;)c=c.nextSibling;o[o.indexOf(c)]=null,t.__e=c}else for(te=o.length;te--;)ke(o[te]);else t.__e=n.__e,t.__k=n.__k;x.__e(H,t,n)}else o==null&&t.__v==n.__v?(t.__k=n.__k,t.__e=n.__e):c=t.__e=zt(n.__e,t,n,r,i,o,a,l,u);return(p=x.diffed)&&p(t),128&t.__u?void 0:c}function Je(e,t,n){for(var r=0;r<n.length;r++)we(n[r],n[++r],n[++r]);x.__c&&x.__c(t,e),e.some(function(i){try{e=i.__h,i.__h=[],e.some(function(o){o.call(i)})}catch(o){x.__e(o,i.__v)}})}function Ke(e){return typeof e!="object"||e==null?e:ue(e)?e.map(Ke):B({},e)}function zt(e,t,n,r,i,o,a,c,l){var u,p,s,m,_,f,h,$=n.props,g=t.props,b=t.type;if(b=="svg"?i="http://www.w3.org/2000/svg":b=="math"?i="http://www.w3.org/1998/Math/MathML":i||(i="http://www.w3.org/1999/xhtml"),o!=null){for(u=0;u<o.length;u++)if((_=o[u])&&"setAttribute"in _==!!b&&(b?_.localName==b:_.nodeType==3)){e=_,o[u]=null;break}}if(e==null){if(b==null)return document.createTextNode(g);e=document.createElementNS(i,b,g.is&&g),c&&(x.__m&&x.__m(t,o),c=!1),o=null}if(b===null)$===g||c&&e.data===g||(e.data=g);else{if(o=o&&de.call(e.childNodes),$=n.props||oe,!c&&o!=null)for($={},u=0;u<e.attributes.length;u++)$[(_=e.attributes[u]).name]=_.value;for(u in $)if(_=$[u],u!="children"){if(u=="dangerouslySetInnerHTML")s=_;else if(!(u in g)){if(u=="value"&&"defaultValue"in g||u=="checked"&&"defaultChecked"in g)continue;se(e,u,null,_,i)}}for(u in g)_=g[u],u=="children"?m=_:u=="dangerouslySetInnerHTML"?p=_:u=="value"?f=_:u=="checked"?h=_:c&&typeof _!="function"||$[u]===_||se(e,u,_,$[u],i);if(p)c||s&&(p.__html===s.__html||p.__html===e.innerHTML)||(e.innerHTML=p.__html),t.__k=[];else if(s&&(e.innerHTML=""),Ve(t.type==="template"?e.content:e,ue(m)?m:[m],t,n,r,b=="foreignObject"?"http://www.w3.org/1999/xhtml":i,o,a,o?o[0]:n.__k&&Z(n,0),c,l),o!=null)for(u=o.length;u--;)ke(o[u]);c||(u="value",b=="progress"&&f==null?e.removeAttribute("value"):f!==void 0&&(f!==e[u]||b=="progress"&&!f||b=="option"&&f!==$[u])&&se(e,u,f,$[u],i),u="checked",h!==void 0&&h!==e[u]&&se(e,u,h,$[u],i))}return e}function we(e,t,n){try{if(typeof e=="function"){var r=typeof e.__u=="function";r&&e.__u(),r&&t==null||(e.__u=e(t))}else e.current=t}catch(i){x.__e(i,n)}}function Ge(e,t,n){var r,i;if(x.unmount&&x.unmount(e),(r=e.ref)&&(r.current&&r.current!==e.__e||we(r,null,t)),(r=e.__c)!=null){if(r.componentWillUnmount)try{r.componentWillUnmount()}catch(o){x.__e(o,t)}r.base=r.__P=null}if(r=e.__k)for(i=0;i<r.length;i++)r[i]&&Ge(r[i],t,n||typeof e.type!="function");n||ke(e.__e),e.__c=e.__=e.__e=void 0}function Ut(e,t,n){return this.constructor(e,n)}function Ce(e,t,n){var r,i,o,a;t==document&&(t=document.documentElement),x.__&&x.__(e,t),i=(r=typeof n=="function")?null:n&&n.__k||t.__k,o=[],a=[],xe(t,e=(!r&&n||t).__k=pe(fe,null,[e]),i||oe,oe,t.namespaceURI,!r&&n?[n]:i?null:t.firstChild?de.call(t.childNodes):null,o,!r&&n?n:i?i.__e:t.firstChild,r,a),Je(o,e,a)}de=Be.slice,x={__e:function(e,t,n,r){for(var i,o,a;t=t.__;)if((i=t.__c)&&!i.__)try{if((o=i.constructor)&&o.getDerivedStateFromError!=null&&(i.setState(o.getDerivedStateFromError(e)),a=i.__d),i.componentDidCatch!=null&&(i.componentDidCatch(e,r||{}),a=i.__d),a)return i.__E=i}catch(c){e=c}throw e}},Fe=0,Nt=function(e){return e!=null&&e.constructor==null},ne.prototype.setState=function(e,t){var n;n=this.__s!=null&&this.__s!==this.state?this.__s:this.__s=B({},this.state),typeof e=="function"&&(e=e(B({},n),this.props)),e&&B(n,e),e!=null&&this.__v&&(t&&this._sb.push(t),Re(this))},ne.prototype.forceUpdate=function(e){this.__v&&(this.__e=!0,e&&this.__h.push(e),Re(this))},ne.prototype.render=fe,J=[],He=typeof Promise=="function"?Promise.prototype.then.bind(Promise.resolve()):setTimeout,Me=function(e,t){return e.__v.__b-t.__v.__b},ce.__r=0,je=/(PointerCapture)$|Capture$/i,ye=0,ve=Le(!1),ge=Le(!0),Dt=0;var re,S,Se,Ze,me=0,rt=[],E=x,Ye=E.__b,Qe=E.__r,Xe=E.diffed,et=E.__c,tt=E.unmount,nt=E.__;function Ie(e,t){E.__h&&E.__h(S,e,me||t),me=0;var n=S.__H||(S.__H={__:[],__h:[]});return e>=n.__.length&&n.__.push({}),n.__[e]}function v(e){return me=1,Rt(at,e)}function Rt(e,t,n){var r=Ie(re++,2);if(r.t=e,!r.__c&&(r.__=[n?n(t):at(void 0,t),function(c){var l=r.__N?r.__N[0]:r.__[0],u=r.t(l,c);l!==u&&(r.__N=[u,r.__[1]],r.__c.setState({}))}],r.__c=S,!S.__f)){var i=function(c,l,u){if(!r.__c.__H)return!0;var p=r.__c.__H.__.filter(function(m){return!!m.__c});if(p.every(function(m){return!m.__N}))return!o||o.call(this,c,l,u);var s=r.__c.props!==c;return p.forEach(function(m){if(m.__N){var _=m.__[0];m.__=m.__N,m.__N=void 0,_!==m.__[0]&&(s=!0)}}),o&&o.call(this,c,l,u)||s};S.__f=!0;var o=S.shouldComponentUpdate,a=S.componentWillUpdate;S.componentWillUpdate=function(c,l,u){if(this.__e){var p=o;o=void 0,i(c,l,u),o=p}a&&a.call(this,c,l,u)},S.shouldComponentUpdate=i}return r.__N||r.__}function I(e,t){var n=Ie(re++,3);!E.__s&&it(n.__H,t)&&(n.__=e,n.u=t,S.__H.__h.push(n))}function U(e){return me=5,Ot(function(){return{current:e}},[])}function Ot(e,t){var n=Ie(re++,7);return it(n.__H,t)&&(n.__=e(),n.__H=t,n.__h=e),n.__}function Lt(){for(var e;e=rt.shift();)if(e.__P&&e.__H)try{e.__H.__h.forEach(_e),e.__H.__h.forEach(Ee),e.__H.__h=[]}catch(t){e.__H.__h=[],E.__e(t,e.__v)}}E.__b=function(e){S=null,Ye&&Ye(e)},E.__=function(e,t){e&&t.__k&&t.__k.__m&&(e.__m=t.__k.__m),nt&&nt(e,t)},E.__r=function(e){Qe&&Qe(e),re=0;var t=(S=e.__c).__H;t&&(Se===S?(t.__h=[],S.__h=[],t.__.forEach(function(n){n.__N&&(n.__=n.__N),n.u=n.__N=void 0})):(t.__h.forEach(_e),t.__h.forEach(Ee),t.__h=[],re=0)),Se=S},E.diffed=function(e){Xe&&Xe(e);var t=e.__c;t&&t.__H&&(t.__H.__h.length&&(rt.push(t)!==1&&Ze===E.requestAnimationFrame||((Ze=E.requestAnimationFrame)||Ft)(Lt)),t.__H.__.forEach(function(n){n.u&&(n.__H=n.u),n.u=void 0})),Se=S=null},E.__c=function(e,t){t.some(function(n){try{n.__h.forEach(_e),n.__h=n.__h.filter(function(r){return!r.__||Ee(r)})}catch(r){t.some(function(i){i.__h&&(i.__h=[])}),t=[],E.__e(r,n.__v)}}),et&&et(e,t)},E.unmount=function(e){tt&&tt(e);var t,n=e.__c;n&&n.__H&&(n.__H.__.forEach(function(r){try{_e(r)}catch(i){t=i}}),n.__H=void 0,t&&E.__e(t,n.__v))};var ot=typeof requestAnimationFrame=="function";function Ft(e){var t,n=function(){clearTimeout(r),ot&&cancelAnimationFrame(t),setTimeout(e)},r=setTimeout(n,100);ot&&(t=requestAnimationFrame(n))}function _e(e){var t=S,n=e.__c;typeof n=="function"&&(e.__c=void 0,n()),S=t}function Ee(e){var t=S;e.__c=e.__(),S=t}function it(e,t){return!e||e.length!==t.length||t.some(function(n,r){return n!==e[r]})}function at(e,t){return typeof t=="function"?t(e):t}var Ne="audiences.console.token",M={get:()=>sessionStorage.getItem(Ne)||"",set:e=>sessionStorage.setItem(Ne,e),clear:()=>sessionStorage.removeItem(Ne)};function st(e){let t=0;for(let n of e)if(t+=1,n<"!"||n>"~"){let r=n.codePointAt(0).toString(16).toUpperCase().padStart(4,"0"),i=n===" "?"a space":`U+${r}`;return`This is not a valid token: character ${t} is ${i}, which no token holds (a token is letters, digits and ASCII punctuation). Copy the token again.`}return""}var Y=class extends Error{constructor(t,n){super(n.message||`HTTP ${t}`),this.status=t,this.error=n}describe(){let{reason:t="",message:n=this.message}=this.error;return this.status===403?`Refused by the server (403 ${t}): ${n}`:this.status===401?`Not signed in (401 ${t}): ${n}`:`${n} (${t?`${this.status} ${t}`:this.status})`}},lt=()=>{};function ct(e){lt=e}async function he(e,t,n){let r={Accept:"application/json"},i=M.get();i&&(r.Authorization=`Bearer ${i}`),n!==void 0&&(r["Content-Type"]="application/json");let o;try{o=await fetch(`/console/api${t}`,{method:e,headers:r,body:n===void 0?void 0:JSON.stringify(n),credentials:"omit",cache:"no-store"})}catch(l){throw new Y(0,{reason:"UNREACHABLE",message:`the server could not be reached: ${l.message}`})}let a=await o.text(),c={};try{c=a?JSON.parse(a):{}}catch{c={error:{message:a}}}if(!o.ok){let l=new Y(o.status,c.error||{});throw o.status===401&&lt(l),l}return c}var N=e=>he("GET",e),K=(e,t)=>he("POST",e,t??{}),ie=(e,t)=>he("PATCH",e,t),dt=e=>he("DELETE",e),Q=e=>{let t=new URLSearchParams;for(let[r,i]of Object.entries(e))i!==""&&i!=null&&t.set(r,i);let n=t.toString();return n?`?${n}`:""};var pt=function(e,t,n,r){var i;t[0]=0;for(var o=1;o<t.length;o++){var a=t[o++],c=t[o]?(t[0]|=a?1:2,n[t[o++]]):t[++o];a===3?r[0]=c:a===4?r[1]=Object.assign(r[1]||{},c):a===5?(r[1]=r[1]||{})[t[++o]]=c:a===6?r[1][t[++o]]+=c+"":a?(i=e.apply(c,pt(e,c,n,["",null])),r.push(i),c[0]?t[0]|=2:(t[o-2]=0,t[o]=i)):r.push(c)}return r},ut=new Map;function ft(e){var t=ut.get(this);return t||(t=new Map,ut.set(this,t)),(t=pt(this,t.get(e)||(t.set(e,t=function(n){for(var r,i,o=1,a="",c="",l=[0],u=function(m){o===1&&(m||(a=a.replace(/^\s*\n\s*|\s*\n\s*$/g,"")))?l.push(0,m,a):o===3&&(m||a)?(l.push(3,m,a),o=2):o===2&&a==="..."&&m?l.push(4,m,0):o===2&&a&&!m?l.push(5,0,!0,a):o>=5&&((a||!m&&o===5)&&(l.push(o,0,a,i),o=6),m&&(l.push(o,m,0,i),o=6)),a=""},p=0;p<n.length;p++){p&&(o===1&&u(),u(p));for(var s=0;s<n[p].length;s++)r=n[p][s],o===1?r==="<"?(u(),l=[l],o=3):a+=r:o===4?a==="--"&&r===">"?(o=1,a=""):a=r+a[0]:c?r===c?c="":a+=r:r==='"'||r==="'"?c=r:r===">"?(u(),o=1):o&&(r==="="?(o=5,i=a,a=""):r==="/"&&(o<5||n[p][s+1]===">")?(u(),o===3&&(l=l[0]),o=l,(l=l[0]).push(2,0,o),o=0):r===" "||r==="	"||r===`
`||r==="\r"?(u(),o=2):a+=r),o===3&&a==="!--"&&(o=4,l=l[0])}return u(),l}(e)),t),arguments,[])).length>1?t:t[0]}var d=ft.bind(pe);var D=e=>e===void 0?"":JSON.stringify(e);function w(e){return e?e.replace("T"," ").replace(/\.\d+Z$/," UTC"):"—"}function $e(e){return e==null?"—":e<1e3?`${e} ms`:e<12e4?`${(e/1e3).toFixed(1)} s`:e<72e5?`${Math.round(e/6e4)} min`:`${(e/36e5).toFixed(1)} h`}var R=e=>e instanceof Y?e.describe():String(e);function X({notice:e}){if(!e)return null;let t=e.kind==="error";return d`<p class=${`notice ${t?"error":"ok"}`} role=${t?"alert":"status"}>${e.text}</p>`}function z(e,t,n=0){let[r,i]=v({data:null,error:null,loading:!0,deps:null}),o=U(0),a=JSON.stringify(t),c=async()=>{let u=++o.current;try{let p=await e();u===o.current&&i({data:p,error:null,loading:!1,deps:a})}catch(p){u===o.current&&i(s=>({data:s.deps===a?s.data:null,error:p,loading:!1,deps:a}))}};I(()=>{i(u=>({...u,loading:!0})),c()},t),I(()=>{if(!n)return;let u=setInterval(()=>{document.hidden||c()},n);return()=>clearInterval(u)},[...t,n]);let l=r.deps===a;return{data:l?r.data:null,error:l?r.error:null,loading:!l||r.loading,reload:c}}function De(e,t,n){I(()=>{let r=setTimeout(e,n);return()=>clearTimeout(r)},t)}function P({error:e}){return e?d`<p class="notice error" role="alert">${R(e)}</p>`:null}function be({points:e,label:t,width:n=320,height:r=90}){if(!e||!e.length)return d`<p class="muted">No size history yet.</p>`;let i={left:34,right:6,top:8,bottom:18},o=e.map($=>$.size),a=Math.max(1,...o),c=Math.min(0,...o),l=n-i.left-i.right,u=r-i.top-i.bottom,p=$=>i.left+(e.length===1?l:$*l/(e.length-1)),s=$=>i.top+u-($-c)/(a-c||1)*u,m=e.map(($,g)=>`${p(g).toFixed(1)},${s($.size).toFixed(1)}`).join(" "),_=e[0].start.slice(5,16).replace("T"," "),f=e[e.length-1].start.slice(5,16).replace("T"," "),h=e[e.length-1].size;return d`
    <svg class="chart" viewBox=${`0 0 ${n} ${r}`} role="img" aria-label=${`${t}: size ${h} now, from ${_} to ${f}`}>
      <title>${t}</title>
      <line x1=${i.left} y1=${i.top+u} x2=${i.left+l} y2=${i.top+u} class="axis" />
      <line x1=${i.left} y1=${i.top} x2=${i.left} y2=${i.top+u} class="axis" />
      <text x=${i.left-4} y=${i.top+8} class="tick" text-anchor="end">${a}</text>
      <text x=${i.left-4} y=${i.top+u} class="tick" text-anchor="end">${c}</text>
      <text x=${i.left} y=${r-4} class="tick">${_}</text>
      <text x=${i.left+l} y=${r-4} class="tick" text-anchor="end">${f}</text>
      <polyline points=${m} class="series" />
      ${e.map(($,g)=>d`<circle cx=${p(g)} cy=${s($.size)} r="2" class="dot"><title>${`${$.start}: ${$.size} (+${$.entered} −${$.exited})`}</title></circle>`)}
    </svg>`}var Pe=e=>`/computations/${encodeURIComponent(e.collection)}/${encodeURIComponent(e.key)}`;function Ht({c:e}){let{done:t,total:n}=e.backfill;return e.status!=="BACKFILLING"?d`<span class="muted">${n?`${t} / ${n}`:"—"}</span>`:d`<progress max=${n||1} value=${t} aria-label=${`${e.key} backfill`}>${t} / ${n}</progress>
    <span> ${t} / ${n}</span>`}function Mt({c:e,onChanged:t,setNotice:n}){let[r,i]=v(!1),o=async(l,u,p)=>{try{await p(),n({kind:"ok",text:`${e.key}: ${u}.`})}catch(s){n({kind:"error",text:`${e.key}: could not ${l}. ${R(s)}`})}i(!1),t()},a=()=>e.enabled?o("disable","disabled",()=>ie(Pe(e),{enabled:!1})):o("enable","enabled",()=>ie(Pe(e),{enabled:!0})),c=()=>o("delete","deleted",()=>dt(Pe(e)));return d`
    <tr data-key=${e.key}>
      <th scope="row"><a href=${`#/builder/${e.collection}/${encodeURIComponent(e.key)}`}>${e.name}</a>
        <div class="muted mono">${e.key}</div></th>
      <td>${e.kind==="audience"?"audience":"computed trait"}<div class="muted">${e.collection}</div></td>
      <td><span class=${`status s-${e.status.toLowerCase()}`}>${e.status}</span>
        ${e.error&&d`<div class="error-text">${e.error}</div>`}</td>
      <td class="num size">${e.size}</td>
      <td><${Ht} c=${e} /></td>
      <td>${w(e.last_computed)}</td>
      <td class="chart-cell"><${be} points=${e.sizes} label=${`${e.key} size, last 48 hours`} /></td>
      <td class="actions">
        <button type="button" onClick=${a}>${e.enabled?"Disable":"Enable"}<span class="sr"> ${e.key}</span></button>
        ${r?d`<button type="button" class="danger" onClick=${c}>Confirm delete<span class="sr"> ${e.key}</span></button>
                 <button type="button" onClick=${()=>i(!1)}>Keep</button>`:d`<button type="button" onClick=${()=>i(!0)}>Delete<span class="sr"> ${e.key}</span></button>`}
      </td>
    </tr>`}function _t(){let[e,t]=v(null),{data:n,error:r,reload:i}=z(()=>N("/computations?sizes=hourly"),[],2e3),o=n?n.computations:[];return d`
    <section aria-labelledby="list-title">
      <div class="title-row">
        <h1 id="list-title">Audiences and computed traits</h1>
        <a class="button" href="#/builder/new">New definition</a>
      </div>
      ${n&&d`<p class="muted">Evaluator clock: ${w(n.clock.now)}${n.clock.manual?" (manual)":""}</p>`}
      <${X} notice=${e} />
      <${P} error=${r} />
      ${n&&!o.length&&d`<p>No definitions yet. <a href="#/builder/new">Write the first one</a>.</p>`}
      ${o.length>0&&d`
        <div class="table-wrap">
          <table class="computations">
            <caption class="sr">Each definition's status, size, backfill and size over time</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Status</th>
              <th scope="col">Size</th><th scope="col">Backfill</th><th scope="col">Last computed</th>
              <th scope="col">Size, 48 h</th><th scope="col">Actions</th></tr></thead>
            <tbody>${o.map(a=>d`<${Mt} key=${a.id} c=${a} onChanged=${i} setNotice=${t} />`)}</tbody>
          </table>
        </div>`}
    </section>`}var mt="event('Order Completed').within(30 days).count() >= 1",ae={include_anonymous_users:!1,include_historical_data:!0,backfill_days:0},jt=["name","description","definition"],Bt=e=>({kind:e.kind,collection:e.collection,key:e.key,name:e.name,description:e.description,definition:e.definition,options:{...ae,...e.options},enabled:e.enabled});function ht(e,t){let n={};for(let o of jt)e[o]!==t[o]&&(n[o]=e[o]);let r={...ae,...t.options},i=Object.fromEntries(Object.entries(e.options).filter(([o,a])=>a!==r[o]));return Object.keys(i).length&&(n.options=i),n}var Ae="audiences.console.draft";function Wt(e,t){sessionStorage.setItem(Ae,JSON.stringify({target:e,form:t}))}function Vt(e){let t=null;try{t=JSON.parse(sessionStorage.getItem(Ae)||"null")}catch{t=null}return!t||t.target!==e?null:(sessionStorage.removeItem(Ae),t.form)}var qt=(e,t)=>e.definition===t.definition&&JSON.stringify({...ae,...e.options})===JSON.stringify({...ae,...t.options});function Jt({summary:e}){if(!e)return null;let t=[["Events",e.events],["Properties",e.properties],["Context",e.context_paths],["Traits",e.traits]],n=e.lookback_unbounded?"all history":e.lookback_ms?$e(e.lookback_ms):"none";return d`
    <dl class="summary" aria-label="Dependency summary">
      ${t.map(([r,i])=>d`<dt>${r}</dt><dd>${i.length?i.join(", "):"—"}</dd>`)}
      <dt>Looks back</dt><dd>${n}</dd>
    </dl>`}function Kt({problem:e}){let[t]=e.message.split("; did you mean");return d`
    <div class="problem" role="alert" aria-live="assertive">
      <p><b>${e.reason}</b>${e.line?` at line ${e.line}, column ${e.column}`:""}: ${t}</p>
      ${e.caret_display&&d`<pre class="caret" aria-label="Where the error is">${e.caret_display}</pre>`}
      ${e.hint&&d`<p class="hint">Hint: ${e.hint}</p>`}
    </div>`}var Gt=e=>e?e.identifiers[0]||e.id:"(gone)";function $t({items:e,value:t=!0}){return e.length?d`<ul class="samples">${e.map(n=>d`
    <li><a href=${`#/profiles/${n.profile?.collection||"users"}/${encodeURIComponent(n.profile?.id||"")}`}>${Gt(n.profile)}</a>
      ${t&&n.value!==!0&&d` <span class="mono">${D(n.value)}</span>`}
      ${"old"in n&&d` <span class="mono muted">${D(n.old)} → ${D(n.new)}</span>`}</li>`)}</ul>`:d`<p class="muted">No sample.</p>`}function Zt({diff:e}){return d`
    <section class="diff" aria-labelledby="diff-title">
      <h3 id="diff-title">If saved, against ${e.compare_key} as stored</h3>
      <div class="columns">
        ${["entering","exiting","staying"].map(t=>d`
          <div class=${`outcome ${t}`} data-outcome=${t}>
            <h4>${t[0].toUpperCase()+t.slice(1)}: <span class="count">${e[t]}</span></h4>
            <${$t} items=${e.samples[t]||[]} value=${!1} />
          </div>`)}
      </div>
      ${e.changed>0&&d`<p>${e.changed} staying profiles would change value.</p>`}
    </section>`}function Yt({target:e,version:t,onRolledBack:n,setNotice:r}){let{data:i,error:o}=z(()=>N(`${e}/versions`),[e,t]),a=i&&i.versions.find(l=>l.current),c=async l=>{try{let{computation:u,changed:p}=await K(`${e}/rollback`,{version:l});r({kind:"ok",text:p.length?`Rolled back to version ${l}: saved as version ${u.version}; it is ${u.status}.`:`Version ${l} has the current text and options: nothing changed (still version ${u.version}, ${u.status}).`}),n()}catch(u){r({kind:"error",text:`Rollback failed. ${R(u)}`})}};return d`
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <${P} error=${o} />
      ${i&&d`<div class="table-wrap"><table>
        <thead><tr><th scope="col">Version</th><th scope="col">Saved</th><th scope="col">By</th>
          <th scope="col">Size after backfill</th><th scope="col">Definition</th><th scope="col"></th></tr></thead>
        <tbody>${i.versions.map(l=>d`<tr>
          <th scope="row">${l.version}${l.current?" (current)":""}</th><td>${w(l.created)}</td><td>${l.actor||"—"}</td>
          <td class="num">${l.size_after_backfill??"—"}</td><td><code>${l.definition}</code></td>
          <td>${l.current?"":a&&qt(l,a)?d`<span class="muted">Same as current</span>`:d`<button type="button" onClick=${()=>c(l.version)}>Roll back to version ${l.version}</button>`}</td>
        </tr>`)}</tbody></table></div>`}
    </section>`}function Qt({target:e,version:t}){let[n,r]=v("hourly"),{data:i,error:o}=z(()=>N(`${e}/sizes?interval=${n}`),[e,n,t]),a=i?i.points.reduce((c,l)=>c+l.entered+l.exited,0):0;return d`
    <section aria-labelledby="sizes-title">
      <h2 id="sizes-title">Size over time</h2>
      <label for="size-interval">Interval</label>
      <select id="size-interval" value=${n} onChange=${c=>r(c.target.value)}>
        <option value="hourly">Hourly, last 48 hours</option><option value="daily">Daily, last 30 days</option></select>
      <${P} error=${o} />
      ${i&&d`<p>Size now <b>${i.size}</b>; ${a} entries and exits in the range shown.</p>
        <${be} points=${i.points} label=${`${i.key} size, ${n}`} width=${640} height=${160} />`}
    </section>`}function bt({args:e}){let t=e.length===2,[n,r]=t?e:["users",""],i=`/computations/${encodeURIComponent(n)}/${encodeURIComponent(r)}`,[o,a]=v({kind:"audience",collection:"users",key:"",name:"",description:"",definition:t?"":mt,options:ae,enabled:!0}),[c,l]=v(null),[u,p]=v(""),[s,m]=v(null),[_,f]=v(null),[h,$]=v(!1),[g,b]=v(null),[q,L]=v(null),W=U(0),O=U(0),F=y=>k=>a({...o,[y]:k.target.type==="checkbox"?k.target.checked:k.target.value}),V=y=>k=>a({...o,options:{...o.options,[y]:k.target.type==="checkbox"?k.target.checked:parseInt(k.target.value,10)||0}}),j=async(y=null)=>{try{let{computation:k,etag:C}=await N(i);l(k),p(C);let T=Bt(k);a(y?{...T,...y,options:{...T.options,...y.options||{}}}:T)}catch(k){L(k)}},te="Your edits from before you were signed out are back in the form; they are not saved yet.";I(()=>{W.current+=1,O.current+=1,f(null),$(!1),m(null),b(null);let y=Vt(i);y&&b({kind:"ok",text:te}),t?j(y&&{name:y.name,description:y.description,definition:y.definition,options:y.options}):y&&a(y)},[i]);let A=U(null);A.current={form:o,saved:c},I(()=>()=>{let{form:y,saved:k}=A.current,C=t?k&&Object.keys(ht(y,k)).length>0:y.key!==""||y.definition!==mt;!M.get()&&C&&Wt(i,y)},[i]),De(async()=>{let y=++W.current;if(!o.definition.trim()){m(null),O.current+=1,f(null),$(!1);return}let k;try{k=await K("/validate",{kind:o.kind,collection:o.collection,key:o.key,definition:o.definition})}catch(C){k={valid:!1,failure:C}}y===W.current&&(m(k),k.valid||(O.current+=1,f(null),$(!1)))},[o.definition,o.kind,o.collection,o.key],300);let H=async(y=t,k=!1)=>{let C=++O.current;$(!0);let T;try{T=await K("/preview",{kind:o.kind,collection:o.collection,definition:o.definition,options:o.options,sample_size:10,compare_key:y?r:""})}catch(G){T={failure:G}}C===O.current&&(f(k&&T.diff?{...T,diff:null}:T),$(!1))};De(()=>{s&&s.valid&&H()},[s,JSON.stringify(o.options)],400);let[ze,Et]=v(0);I(()=>{ze&&s&&s.valid&&H()},[ze]);let It=async y=>{y.preventDefault();let k=t&&c?ht(o,c):{};try{if(t){if(!Object.keys(k).length){b({kind:"ok",text:"Nothing changed: not saved."});return}let{computation:C,etag:T}=await ie(i,{...k,etag:u});l(C),p(T),b({kind:"ok",text:`Saved ${C.key} as version ${C.version}; it is ${C.status}.`}),f(G=>G&&G.diff?{...G,diff:null}:G),H(!0,!0)}else{let{computation:C}=await K("/computations",{kind:o.kind,collection:o.collection,key:o.key,name:o.name,description:o.description,definition:o.definition,enabled:o.enabled,options:o.options});location.hash=`#/audiences/${encodeURIComponent(C.key)}`}}catch(C){if(C.status===409&&C.error.reason==="EDIT_CONFLICT"){f(null),await j(k),Et(T=>T+1),b({kind:"error",text:`Not saved: ${r} was saved by someone else since you loaded it. The saved definition has been loaded again with your edits kept in the form; check the diff, then save again.`});return}b({kind:"error",text:`Not saved. ${R(C)}`}),C.error&&C.error.definition&&m({valid:!1,error:C.error.definition})}};return d`
    <section aria-labelledby="builder-title">
      <h1 id="builder-title">${t?`Edit ${r}`:"New audience or computed trait"}</h1>
      <${P} error=${q} />
      <form class="builder" onSubmit=${It}>
        <div class="fields">
          <label for="f-kind">Kind</label>
          <select id="f-kind" value=${o.kind} onChange=${F("kind")} disabled=${t}>
            <option value="audience">Audience</option><option value="computed_trait">Computed trait</option></select>
          <label for="f-collection">Collection</label>
          <select id="f-collection" value=${o.collection} onChange=${F("collection")} disabled=${t}>
            <option value="users">Users</option><option value="accounts">Accounts</option></select>
          <label for="f-key">Key</label>
          <input id="f-key" value=${o.key} onInput=${F("key")} readOnly=${t} required pattern="[a-z][a-z0-9_]*"
                 aria-describedby="f-key-help" />
          <span id="f-key-help" class="help">snake_case: a–z, 0–9 and _, starting with a letter; fixed once saved.</span>
          <label for="f-name">Name</label>
          <input id="f-name" value=${o.name} onInput=${F("name")} />
          <label for="f-description">Description</label>
          <input id="f-description" value=${o.description} onInput=${F("description")} />
          <label class="check"><input type="checkbox" checked=${o.options.include_anonymous_users}
            onChange=${V("include_anonymous_users")} /> Include anonymous users</label>
          <label class="check"><input type="checkbox" checked=${o.options.include_historical_data}
            onChange=${V("include_historical_data")} /> Include historical data</label>
          <label for="f-backfill-days">Backfill days</label>
          <input id="f-backfill-days" type="number" min="0" step="1" value=${o.options.backfill_days}
                 onInput=${V("backfill_days")} aria-describedby="f-backfill-help" />
          <span id="f-backfill-help" class="help">With historical data: only events from this many days before creation on (0: all).</span>
          ${!t&&d`<label class="check"><input type="checkbox" checked=${o.enabled} onChange=${F("enabled")} /> Enabled</label>`}
        </div>
        <label for="f-definition">Definition</label>
        <textarea id="f-definition" class="mono" rows="6" spellcheck=${!1} value=${o.definition}
                  onInput=${F("definition")} aria-describedby="validation"></textarea>
        <div id="validation" class="validation" aria-live="polite">
          ${s&&s.valid&&d`<p class="valid">Valid.</p>`}
          ${s&&s.error&&d`<${Kt} problem=${s.error} />`}
          ${s&&s.failure&&d`<${P} error=${s.failure} />`}
          ${s&&s.summary&&d`<h2>Reads</h2><${Jt} summary=${s.summary} />`}
        </div>
        <div class="buttons">
          <button type="button" onClick=${()=>H()} disabled=${h}>Preview</button>
          <button type="submit" class="primary">${t?"Save changes":"Save"}</button>
          ${t&&d`<a href="#/builder/new">New definition</a>`}
        </div>
        <${X} notice=${g} />
      </form>
      <section class="preview" aria-labelledby="preview-title" aria-live="polite" aria-busy=${h}>
        <h2 id="preview-title">Preview</h2>
        ${!_&&d`<p class="muted">A valid definition is previewed over every profile as it stands now.</p>`}
        ${_&&_.failure&&d`<${P} error=${_.failure} />`}
        ${_&&!_.failure&&d`
          <p class="preview-count"><b class="count">${_.count}</b> ${o.kind==="audience"?"profiles match":"profiles have a value"} (evaluated ${w(_.evaluated)})</p>
          <${$t} items=${_.samples} />
          ${_.diff&&d`<${Zt} diff=${_.diff} />`}`}
      </section>
      ${t&&c&&d`<${Qt} target=${i} version=${c.version} />`}
      ${t&&c&&d`<${Yt} target=${i} version=${c.version} onRolledBack=${j} setNotice=${b} />`}
    </section>`}var Xt=50;function en(e){return e.change.type==="changed"?d`changed <span class="mono">${D(e.change.old)} → ${D(e.change.new)}</span>`:e.change.type}function vt(e){let[t,n]=e.split("#")[0].split(/\?(.*)/s);return n===void 0?t:`${t}?${n.split("&").filter(r=>r.includes("=")).map(r=>`${r.split("=")[0]}=…`).join("&")}`}function tn(e){let t=e.config;return e.kind==="webhook"?vt(t.url||""):e.kind==="segment"?vt(t.base_url||""):e.kind==="csv"?t.directory:e.kind==="postgres"?`tables ${t.schema}.${t.table_prefix}<collection>_<key>`:e.kind==="grpc_feed"?"a change feed, read with ListChanges and WatchChanges":e.key}function nn({items:e}){return e.length?d`<div class="table-wrap"><table class="connections">
    <thead><tr><th scope="col">Definition</th><th scope="col">Phase</th><th scope="col">Pending</th>
      <th scope="col">Delivered</th><th scope="col">Retrying</th><th scope="col">Dead</th><th scope="col">Lag</th>
      <th scope="col">Last delivery</th><th scope="col">Last failure</th></tr></thead>
    <tbody>${e.map(t=>d`<tr>
      <th scope="row">${t.computation.key} <span class="muted">${t.computation.collection}</span></th>
      <td>${t.phase}</td><td class="num">${t.pending}</td><td class="num">${t.delivered}</td>
      <td class="num">${t.retrying}</td><td class="num">${t.dead}</td><td>${$e(t.lag_ms)}</td>
      <td>${w(t.last_delivery)}</td>
      <td>${t.last_error?d`<span class="error-text">${t.last_error}</span> <span class="muted">${w(t.last_error_at)}</span>`:"—"}</td>
    </tr>`)}</tbody></table></div>`:d`<p class="muted">Nothing connected.</p>`}function on({destination:e,onRedriven:t,setNotice:n}){let[r,i]=v({letters:[],next:""}),[o,a]=v(null),c=e.dead_letters.map(f=>f.id).join(",");I(()=>{i({letters:[],next:""})},[e.key,c]);let l=[...e.dead_letters,...r.letters],u=r.letters.length?r.next:e.dead_letters_next,p=e.dead_letters_total,s=async()=>{try{let f=await N(`/destinations/${encodeURIComponent(e.key)}/dead-letters${Q({after:u,limit:Xt})}`);i({letters:[...r.letters,...f.dead_letters],next:f.next}),a(null)}catch(f){a(f)}},m=f=>i(h=>({...h,letters:f.length?h.letters.filter($=>!f.includes($.id)):[]})),_=async f=>{try{let{redriven:h}=await K(`/destinations/${encodeURIComponent(e.key)}/redrive`,{ids:f});n({kind:"ok",text:`${e.key}: ${h} dead letter${h===1?"":"s"} put back in the queue.`}),m(f)}catch(h){n({kind:"error",text:`${e.key}: redrive failed. ${R(h)}`}),h.error&&h.error.reason==="DEAD_LETTER_NOT_FOUND"&&m(f)}t()};return d`
    <h3>Dead letters (${p})</h3>
    ${!l.length&&d`<p class="muted">None.</p>`}
    ${l.length>0&&l.length<p&&d`<p class="muted">Showing the oldest ${l.length} of ${p}.</p>`}
    ${l.length>0&&d`
      <button type="button" onClick=${()=>_([])}>Redrive all<span class="sr"> of ${e.key}</span></button>
      <div class="table-wrap"><table class="dead-letters">
        <thead><tr><th scope="col">Id</th><th scope="col">Definition</th><th scope="col">Change</th><th scope="col">Profile</th>
          <th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Parked</th><th scope="col"></th></tr></thead>
        <tbody>${l.map(f=>d`<tr data-id=${f.id}>
          <th scope="row" class="mono">${f.id}</th><td>${f.computation.key}</td><td class="change">${en(f)}</td>
          <td><a href=${`#/profiles/${f.computation.collection}/${encodeURIComponent(f.profile_id)}`}>${f.profile_id}</a></td>
          <td class="num">${f.attempts}</td><td class="error-text">${f.last_error}</td><td>${w(f.dead_at)}</td>
          <td><button type="button" onClick=${()=>_([f.id])}>Redrive<span class="sr"> ${f.id}</span></button></td>
        </tr>`)}</tbody></table></div>
      ${u&&d`<button type="button" class="more" onClick=${s}>Show more<span class="sr"> dead letters of ${e.key}</span></button>`}
      <${P} error=${o} />`}`}function gt(){let[e,t]=v(null),{data:n,error:r,reload:i}=z(()=>N("/destinations"),[],3e3),o=n?n.destinations:[];return d`
    <section aria-labelledby="destinations-title">
      <div class="title-row">
        <h1 id="destinations-title">Destinations</h1>
        <button type="button" onClick=${i}>Refresh</button>
      </div>
      <${X} notice=${e} />
      <${P} error=${r} />
      ${n&&!o.length&&d`<p>No destinations. Create one with <code>audiences destinations create</code>.</p>`}
      ${o.map(a=>d`
        <article class="destination" data-key=${a.key} aria-labelledby=${`d-${a.key}`}>
          <h2 id=${`d-${a.key}`}>${a.name||a.key} <span class="muted">${a.kind}${a.enabled?"":" · disabled"}</span></h2>
          <p class="muted mono address">${tn(a)}</p>
          <h3>Connections</h3>
          <${nn} items=${a.connections} />
          <${on} destination=${a} onRedriven=${i} setNotice=${t} />
        </article>`)}
    </section>`}function rn({stream:e}){return d`
    <div class="stream">
      <p><b>${e.event}</b>: ${e.seen} seen, ${e.count} kept</p>
      ${e.filters.length>0&&d`<ol class="filters">${e.filters.map(t=>d`
        <li><code>${t.filter}</code> leaves ${t.remaining}</li>`)}</ol>`}
      ${e.events.length>0&&d`<div class="table-wrap"><table class="evidence">
        <thead><tr><th scope="col">Time</th><th scope="col">Message</th><th scope="col">Value</th><th scope="col">Read</th></tr></thead>
        <tbody>${e.events.map(t=>d`<tr>
          <td>${w(t.timestamp)}</td><td class="mono">${t.message_id}</td><td class="mono">${D(t.value)}</td>
          <td class="mono">${Object.entries(t.read).map(([n,r])=>`${n} = ${D(r)}`).join("; ")}</td></tr>`)}
        </tbody></table></div>`}
    </div>`}function Te({node:e}){let t=e.value===!0?"holds":e.value===!1?"fails":"value";return d`
    <li class=${`node ${t}`}>
      <span class="verdict">${e.value===!0?"✓":e.value===!1?"✗":"="}</span>
      <code>${e.text}</code> <span class="mono value">${D(e.value)}</span>
      ${e.trait&&d` <span class="muted">(${e.trait.class.replace("_"," ")} ${e.trait.key})</span>`}
      ${e.stream&&d`<${rn} stream=${e.stream} />`}
      ${e.users&&d`<p class="muted">${e.users_satisfying} of ${e.users_total} linked users satisfy it</p>
        <ul>${e.users.map(n=>d`<li>${n.profile?.identifiers[0]||n.profile?.id}: ${n.satisfied?"yes":"no"}
          <ul class="tree"><${Te} node=${n.node} /></ul></li>`)}</ul>`}
      ${e.children.length>0&&d`<ul class="tree">${e.children.map(n=>d`<${Te} node=${n} />`)}</ul>`}
    </li>`}function yt({collection:e,definitionKey:t,address:n,onClose:r}){let i=U(null);I(()=>i.current?.focus(),[t,n]);let{data:o,error:a}=z(()=>N(`/explain/${encodeURIComponent(e)}/${encodeURIComponent(t)}${Q({profile:n})}`),[e,t,n]);return d`
    <section class="explain" aria-labelledby="explain-title" tabindex="-1" ref=${i}>
      <div class="title-row">
        <h2 id="explain-title">Why: ${t}</h2>
        <button type="button" onClick=${r}>Close</button>
      </div>
      <${P} error=${a} />
      ${o&&d`
        <p>Value <b class="mono">${D(o.value)}</b> at ${w(o.at)}; stored <span class="mono">${D(o.stored)}</span>
          ${o.pending?" (waiting for a tick)":""}${o.anonymous_excluded?"; anonymous users are left out":""}</p>
        <pre class="definition">${o.definition.text}</pre>
        <ul class="tree root"><${Te} node=${o.root} /></ul>
        <p class="next">${o.next_change.summary}</p>`}
    </section>`}var kt=(e,t,n,r={})=>N(`/profiles/${e}/${n}${Q({address:t,...r})}`);function ee({collection:e,address:t,name:n,params:r={},render:i,title:o}){let[a,c]=v([""]),l=a[a.length-1],u=JSON.stringify(r);I(()=>c([""]),[e,t,u]);let{data:p,error:s}=z(()=>kt(e,t,n,{...r,next:l}),[e,t,u,l]);return d`
    <section class="part" aria-label=${o}>
      <${P} error=${s} />
      ${p&&(p.items.length?i(p.items):d`<p class="muted">None.</p>`)}
      <div class="pager">
        ${a.length>1&&d`<button type="button" onClick=${()=>c(a.slice(0,-1))}>Previous page</button>`}
        ${p&&p.next&&d`<button type="button" onClick=${()=>c([...a,p.next])}>Next page</button>`}
      </div>
    </section>`}function an({collection:e,address:t}){let[n,r]=v("");return d`
    <h2>Traits</h2>
    <label for="trait-class">Class</label>
    <select id="trait-class" value=${n} onChange=${i=>r(i.target.value)}>
      <option value="">All</option><option value="custom">Custom</option>
      <option value="computed_trait">Computed</option><option value="audience">Audience</option></select>
    <${ee} collection=${e} address=${t} name="traits" params=${{class:n,limit:50}} title="Traits"
      render=${i=>d`<div class="table-wrap"><table><thead><tr><th scope="col">Key</th><th scope="col">Value</th>
        <th scope="col">Class</th><th scope="col">Updated</th></tr></thead><tbody>${i.map(o=>d`
        <tr><th scope="row" class="mono">${o.key}</th><td class="mono">${D(o.value)}</td><td>${o.class.replace("_"," ")}</td>
          <td>${w(o.updated)}</td></tr>`)}</tbody></table></div>`} />`}var sn=Date.parse("9999-12-31T00:00:00Z"),ln=e=>e&&Date.parse(`${e}T00:00:00Z`)<sn?new Date(Date.parse(`${e}T00:00:00Z`)+864e5).toISOString().slice(0,10):"";function cn({collection:e,address:t}){let[n,r]=v({include:"",exclude:"",start:"",end:"",sort:"desc"}),[i,o]=v(n),a=c=>l=>r({...n,[c]:l.target.value});return d`
    <h2>Events</h2>
    <form class="filters-form" onSubmit=${c=>{c.preventDefault(),o(n)}}>
      <label>Only events <input value=${n.include} onInput=${a("include")} placeholder="Signed Up, Order Completed" /></label>
      <label>Except <input value=${n.exclude} onInput=${a("exclude")} /></label>
      <label>From (UTC) <input type="date" value=${n.start} onInput=${a("start")} /></label>
      <label>Until (UTC, that day included) <input type="date" value=${n.end} onInput=${a("end")} /></label>
      <label>Order <select value=${n.sort} onChange=${a("sort")}><option value="desc">Newest first</option>
        <option value="asc">Oldest first</option></select></label>
      <button type="submit">Filter events</button>
    </form>
    <${ee} collection=${e} address=${t} name="events" params=${{...i,end:ln(i.end),limit:20}} title="Events"
      render=${c=>d`<ol class="events">${c.map(l=>d`<li>
        <b>${l.event||l.type}</b> <span class="muted">${l.type} · ${w(l.timestamp)} · ${l.message_id}</span>
        <details><summary>Properties and context</summary><pre class="mono">${l.properties}</pre><pre class="mono">${l.context}</pre></details>
      </li>`)}</ol>`} />`}function dn(e){let t=e.indexOf(":");return t<0?e.trim():`${e.slice(0,t).trim()}${e.slice(t)}`}function xt({args:e}){let[t="users",n=""]=e,[r,i]=v({collection:t,address:n}),[o,a]=v(null),c=U(`${t}/${n}`);I(()=>{c.current!==`${t}/${n}`&&(c.current=`${t}/${n}`,i({collection:t,address:n}),a(null))},[t,n]);let l=f=>{f.preventDefault(),location.hash=`#/profiles/${r.collection}/${encodeURIComponent(dn(r.address))}`},u=n!=="",p=z(()=>u?kt(t,n,"metadata"):Promise.resolve(null),[t,n]),m=(z(()=>N("/computations"),[]).data?.computations||[]).filter(f=>f.collection===t),_={collection:t,address:n};return d`
    <section aria-labelledby="profiles-title">
      <h1 id="profiles-title">Profile explorer</h1>
      <form class="lookup" onSubmit=${l} role="search">
        <label for="p-collection">Collection</label>
        <select id="p-collection" value=${r.collection} onChange=${f=>i({...r,collection:f.target.value})}>
          <option value="users">Users</option><option value="accounts">Accounts</option></select>
        <label for="p-address">Profile (type:value or prf_…)</label>
        <input id="p-address" value=${r.address} required placeholder="email:ada@example.com"
               onInput=${f=>i({...r,address:f.target.value})} />
        <button type="submit">Find</button>
      </form>
      ${u&&d`
        <${P} error=${p.error} />
        ${p.data&&d`
          <p class="profile-head">Profile <b class="mono">${p.data.profile_id}</b> · created ${w(p.data.created)} ·
            last message ${w(p.data.last_message)}${p.data.merged.length?` · merged from ${p.data.merged.join(", ")}`:""}</p>
          ${o&&d`<${yt} collection=${t} definitionKey=${o} address=${n} onClose=${()=>a(null)} />`}
          <div class="grid">
            <div>
              <h2>Audiences</h2>
              <${ee} ...${_} name="memberships" params=${{limit:50}} title="Audience memberships"
                render=${f=>d`<ul class="memberships">${f.map(h=>d`<li data-key=${h.key}>
                  <b>${h.name}</b> <span class="muted mono">${h.key}</span> · since ${w(h.entered)}
                  <button type="button" onClick=${()=>a(h.key)}>Why<span class="sr"> is this profile in ${h.key}</span></button></li>`)}</ul>`} />
              <form class="why-other" onSubmit=${f=>{f.preventDefault(),a(f.target.elements.other.value)}}>
                <label for="why-other">Explain any definition</label>
                <select id="why-other" name="other">${m.map(f=>d`<option value=${f.key}>${f.key}</option>`)}</select>
                <button type="submit" disabled=${!m.length}>Explain</button>
              </form>
              <h2>Membership history</h2>
              <${ee} ...${_} name="history" params=${{limit:20}} title="Membership history"
                render=${f=>d`<ol class="history">${f.map(h=>d`<li>
                  ${w(h.at)} · <b>${h.change}</b> ${h.key} <span class="mono muted">${D(h.old)} → ${D(h.new)}</span></li>`)}</ol>`} />
              <h2>Identifiers</h2>
              <${ee} ...${_} name="identifiers" params=${{limit:50}} title="Identifiers"
                render=${f=>d`<ul>${f.map(h=>d`<li class="mono">${h.type}:${h.value}
                  <span class="muted"> · ${w(h.added)}</span></li>`)}</ul>`} />
              <h2>Links</h2>
              <${ee} ...${_} name="links" params=${{limit:50}} title="Linked profiles"
                render=${f=>d`<ul>${f.map(h=>d`<li>
                  <a href=${`#/profiles/${h.collection}/${encodeURIComponent(h.id)}`}>${h.identifiers[0]||h.id}</a>
                  <span class="muted"> · ${h.collection} · linked ${w(h.linked)}</span></li>`)}</ul>`} />
            </div>
            <div>
              <${an} ...${_} />
              <${cn} ...${_} />
            </div>
          </div>`}`}
    </section>`}function wt(){let e=location.hash.replace(/^#\/?/,"").split("/").map(decodeURIComponent);return{page:e[0]||"audiences",args:e.slice(1)}}function un({onSession:e,reason:t}){let[n,r]=v(""),[i,o]=v(t||"");return d`
    <main class="signin">
      <h1>Audiences console</h1>
      <form onSubmit=${async c=>{c.preventDefault();let l=n.trim(),u=st(l);if(u){o(u);return}M.set(l);try{e(await N("/session"))}catch(p){M.clear(),o(R(p))}}}>
        <label for="token">Token (admin, or read for read-only pages)</label>
        <input id="token" name="token" type="password" autocomplete="off" required value=${n}
               onInput=${c=>r(c.target.value)} />
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">The token stays in this tab (sessionStorage) and is sent only to this server.</p>
      ${i&&d`<p class="notice error" role="alert">${i}</p>`}
    </main>`}function pn(e){e.preventDefault(),document.getElementById("main")?.focus()}var Ct=[["audiences","Audiences & traits"],["builder","Builder"],["profiles","Profiles"],["destinations","Destinations"]];function fn({session:e,onSignOut:t}){let[n,r]=v(wt());I(()=>{let l=()=>r(wt());return addEventListener("hashchange",l),()=>removeEventListener("hashchange",l)},[]);let{page:i,args:o}=n,a=U(!0);I(()=>{let l=(Ct.find(([u])=>u===i)||[i,i])[1];if(document.title=`${l} · Audiences console`,a.current){a.current=!1;return}document.getElementById("main")?.focus()},[i,o.join("/")]);let c={audiences:()=>d`<${_t} session=${e} />`,builder:()=>d`<${bt} session=${e} args=${o} key=${o.join("/")} />`,profiles:()=>d`<${xt} session=${e} args=${o} />`,destinations:()=>d`<${gt} session=${e} />`}[i];return d`
    <header class="top">
      <a class="skip" href="#main" onClick=${pn}>Skip to content</a>
      <strong class="brand">Audiences</strong>
      <nav aria-label="Pages">
        ${Ct.map(([l,u])=>d`
          <a href=${`#/${l==="builder"?"builder/new":l}`} aria-current=${i===l?"page":void 0}>${u}</a>`)}
      </nav>
      <span class="who">Space <b>${e.space}</b> · <span class="scope">${e.scope}</span> token</span>
      <button type="button" class="link" onClick=${t}>Sign out</button>
    </header>
    ${!e.can_write&&d`
      <p class="banner" role="note">Signed in with a read token: these pages are read-only, and the server refuses any change.</p>`}
    <main id="main" tabindex="-1">${c?c():d`<p role="alert">No page ${i}.</p>`}</main>`}function _n(){let[e,t]=v(null),[n,r]=v(!!M.get()),[i,o]=v("");I(()=>{ct(c=>{M.clear(),t(null),o(R(c))}),M.get()&&N("/session").then(t,c=>o(R(c))).finally(()=>r(!1))},[]);let a=()=>{M.clear(),t(null),o("")};return n?d`<p>Checking the session…</p>`:e?d`<${fn} session=${e} onSignOut=${a} />`:d`<${un} onSession=${t} reason=${i} />`}var St=document.getElementById("app");St.textContent="";Ce(d`<${_n} />`,St);
