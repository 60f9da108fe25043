var ne,g,Ie,mt,O,Ee,De,Ae,Ue,me,_e,fe,ht,X={},Re=[],$t=/acit|ex(?:s|g|n|p|$)|rph|grid|ows|mnc|ntw|ine[ch]|zoo|^ord|itera/i,oe=Array.isArray;function L(e,t){for(var n in t)e[n]=t[n];return e}function he(e){e&&e.parentNode&&e.parentNode.removeChild(e)}function re(e,t,n){var r,i,o,a={};for(o in t)o=="key"?r=t[o]:o=="ref"?i=t[o]:a[o]=t[o];if(arguments.length>2&&(a.children=arguments.length>3?ne.call(arguments,2):n),typeof e=="function"&&e.defaultProps!=null)for(o in e.defaultProps)a[o]===void 0&&(a[o]=e.defaultProps[o]);return ee(e,a,r,i,null)}function ee(e,t,n,r,i){var o={type:e,props:t,key:n,ref:r,__k:null,__:null,__b:0,__e:null,__c:null,constructor:void 0,__v:i??++Ie,__i:-1,__u:0};return i==null&&g.vnode!=null&&g.vnode(o),o}function ie(e){return e.children}function G(e,t){this.props=e,this.context=t}function W(e,t){if(t==null)return e.__?W(e.__,e.__i+1):null;for(var n;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null)return n.__e;return typeof e.type=="function"?W(e):null}function Te(e){var t,n;if((e=e.__)!=null&&e.__c!=null){for(e.__e=e.__c.base=null,t=0;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null){e.__e=e.__c.base=n.__e;break}return Te(e)}}function Pe(e){(!e.__d&&(e.__d=!0)&&O.push(e)&&!te.__r++||Ee!==g.debounceRendering)&&((Ee=g.debounceRendering)||De)(te)}function te(){for(var e,t,n,r,i,o,a,l=1;O.length;)O.length>l&&O.sort(Ae),e=O.shift(),l=O.length,e.__d&&(n=void 0,i=(r=(t=e).__v).__e,o=[],a=[],t.__P&&((n=L({},r)).__v=r.__v+1,g.vnode&&g.vnode(n),$e(t.__P,n,r,t.__n,t.__P.namespaceURI,32&r.__u?[i]:null,o,i??W(r),!!(32&r.__u),a),n.__v=r.__v,n.__.__k[n.__i]=n,Fe(o,n,a),n.__e!=i&&Te(n)));te.__r=0}function Le(e,t,n,r,i,o,a,l,u,d,_){var s,f,p,m,E,h,$=r&&r.__k||Re,v=t.length;for(u=bt(n,t,$,u,v),s=0;s<v;s++)(p=n.__k[s])!=null&&(f=p.__i===-1?X:$[p.__i]||X,p.__i=s,h=$e(e,p,f,i,o,a,l,u,d,_),m=p.__e,p.ref&&f.ref!=p.ref&&(f.ref&&be(f.ref,null,p),_.push(p.ref,p.__c||m,p)),E==null&&m!=null&&(E=m),4&p.__u||f.__k===p.__k?u=He(p,u,e):typeof p.type=="function"&&h!==void 0?u=h:m&&(u=m.nextSibling),p.__u&=-7);return n.__e=E,u}function bt(e,t,n,r,i){var o,a,l,u,d,_=n.length,s=_,f=0;for(e.__k=new Array(i),o=0;o<i;o++)(a=t[o])!=null&&typeof a!="boolean"&&typeof a!="function"?(u=o+f,(a=e.__k[o]=typeof a=="string"||typeof a=="number"||typeof a=="bigint"||a.constructor==String?ee(null,a,null,null,null):oe(a)?ee(ie,{children:a},null,null,null):a.constructor===void 0&&a.__b>0?ee(a.type,a.props,a.key,a.ref?a.ref:null,a.__v):a).__=e,a.__b=e.__b+1,l=null,(d=a.__i=vt(a,n,u,s))!==-1&&(s--,(l=n[d])&&(l.__u|=2)),l==null||l.__v===null?(d==-1&&(i>_?f--:i<_&&f++),typeof a.type!="function"&&(a.__u|=4)):d!=u&&(d==u-1?f--:d==u+1?f++:(d>u?f--:f++,a.__u|=4))):e.__k[o]=null;if(s)for(o=0;o<_;o++)(l=n[o])!=null&&(2&l.__u)==0&&(l.__e==r&&(r=W(l)),Oe(l,l));return r}function He(e,t,n){var r,i;if(typeof e.type=="function"){for(r=e.__k,i=0;r&&i<r.length;i++)r[i]&&(r[i].__=e,t=He(r[i],t,n));return t}e.__e!=t&&(t&&e.type&&!n.contains(t)&&(t=W(e)),n.insertBefore(e.__e,t||null),t=e.__e);do t=t&&t.nextSibling;while(t!=null&&t.nodeType==8);return t}function vt(e,t,n,r){var i,o,a=e.key,l=e.type,u=t[n];if(u===null&&e.key==null||u&&a==u.key&&l===u.type&&(2&u.__u)==0)return n;if(r>(u!=null&&(2&u.__u)==0?1:0))for(i=n-1,o=n+1;i>=0||o<t.length;){if(i>=0){if((u=t[i])&&(2&u.__u)==0&&a==u.key&&l===u.type)return i;i--}if(o<t.length){if((u=t[o])&&(2&u.__u)==0&&a==u.key&&l===u.type)return o;o++}}return-1}function ze(e,t,n){t[0]=="-"?e.setProperty(t,n??""):e[t]=n==null?"":typeof n!="number"||$t.test(t)?n:n+"px"}function Q(e,t,n,r,i){var o;e:if(t=="style")if(typeof n=="string")e.style.cssText=n;else{if(typeof r=="string"&&(e.style.cssText=r=""),r)for(t in r)n&&t in n||ze(e.style,t,"");if(n)for(t in n)r&&n[t]===r[t]||ze(e.style,t,n[t])}else if(t[0]=="o"&&t[1]=="n")o=t!=(t=t.replace(Ue,"$1")),t=t.toLowerCase()in e||t=="onFocusOut"||t=="onFocusIn"?t.toLowerCase().slice(2):t.slice(2),e.l||(e.l={}),e.l[t+o]=n,n?r?n.t=r.t:(n.t=me,e.addEventListener(t,o?fe:_e,o)):e.removeEventListener(t,o?fe:_e,o);else{if(i=="http://www.w3.org/2000/svg")t=t.replace(/xlink(H|:h)/,"h").replace(/sName$/,"s");else if(t!="width"&&t!="height"&&t!="href"&&t!="list"&&t!="form"&&t!="tabIndex"&&t!="download"&&t!="rowSpan"&&t!="colSpan"&&t!="role"&&t!="popover"&&t in e)try{e[t]=n??"";break e}catch{}typeof n=="function"||(n==null||n===!1&&t[4]!="-"?e.removeAttribute(t):e.setAttribute(t,t=="popover"&&n==1?"":n))}}function Ne(e){return function(t){if(this.l){var n=this.l[t.type+e];if(t.u==null)t.u=me++;else if(t.u<n.t)return;return n(g.event?g.event(t):t)}}}function $e(e,t,n,r,i,o,a,l,u,d){var _,s,f,p,m,E,h,$,v,N,U,F,M,y,R,C,pe,T=t.type;if(t.constructor!==void 0)return null;128&n.__u&&(u=!!(32&n.__u),o=[l=t.__e=n.__e]),(_=g.__b)&&_(t);e:if(typeof T=="function")try{if($=t.props,v="prototype"in T&&T.prototype.render,N=(_=T.contextType)&&r[_.__c],U=_?N?N.props.value:_.__:r,n.__c?h=(s=t.__c=n.__c).__=s.__E:(v?t.__c=s=new T($,U):(t.__c=s=new G($,U),s.constructor=T,s.render=yt),N&&N.sub(s),s.props=$,s.state||(s.state={}),s.context=U,s.__n=r,f=s.__d=!0,s.__h=[],s._sb=[]),v&&s.__s==null&&(s.__s=s.state),v&&T.getDerivedStateFromProps!=null&&(s.__s==s.state&&(s.__s=L({},s.__s)),L(s.__s,T.getDerivedStateFromProps($,s.__s))),p=s.props,m=s.state,s.__v=t,f)v&&T.getDerivedStateFromProps==null&&s.componentWillMount!=null&&s.componentWillMount(),v&&s.componentDidMount!=null&&s.__h.push(s.componentDidMount);else{if(v&&T.getDerivedStateFromProps==null&&$!==p&&s.componentWillReceiveProps!=null&&s.componentWillReceiveProps($,U),!s.__e&&(s.shouldComponentUpdate!=null&&s.shouldComponentUpdate($,s.__s,U)===!1||t.__v==n.__v)){for(t.__v!=n.__v&&(s.props=$,s.state=s.__s,s.__d=!1),t.__e=n.__e,t.__k=n.__k,t.__k.some(function(J){J&&(J.__=t)}),F=0;F<s._sb.length;F++)s.__h.push(s._sb[F]);s._sb=[],s.__h.length&&a.push(s);break e}s.componentWillUpdate!=null&&s.componentWillUpdate($,s.__s,U),v&&s.componentDidUpdate!=null&&s.__h.push(function(){s.componentDidUpdate(p,m,E)})}if(s.context=U,s.props=$,s.__P=e,s.__e=!1,M=g.__r,y=0,v){for(s.state=s.__s,s.__d=!1,M&&M(t),_=s.render(s.props,s.state,s.context),R=0;R<s._sb.length;R++)s.__h.push(s._sb[R]);s._sb=[]}else do s.__d=!1,M&&M(t),_=s.render(s.props,s.state,s.context),s.state=s.__s;while(s.__d&&++y<25);s.state=s.__s,s.getChildContext!=null&&(r=L(L({},r),s.getChildContext())),v&&!f&&s.getSnapshotBeforeUpdate!=null&&(E=s.getSnapshotBeforeUpdate(p,m)),C=_,_!=null&&_.type===ie&&_.key==null&&(C=Me(_.props.children)),l=Le(e,oe(C)?C:[C],t,n,r,i,o,a,l,u,d),s.base=t.__e,t.__u&=-161,s.__h.length&&a.push(s),h&&(s.__E=s.__=null)}catch(J){if(t.__v=null,u||o!=null)if(J.then){for(t.__u|=u?160:128;l&&l.nodeType==8&&l.nextSibling;)l=l.nextSibling;o[o.indexOf(l)]=null,t.__e=l}else for(pe=o.length;pe--;)he(o[pe]);else t.__e=n.__e,t.__k=n.__k;g.__e(J,t,n)}else o==null&&t.__v==n.__v?(t.__k=n.__k,t.__e=n.__e):l=t.__e=gt(n.__e,t,n,r,i,o,a,u,d);return(_=g.diffed)&&_(t),128&t.__u?void 0:l}function Fe(e,t,n){for(var r=0;r<n.length;r++)be(n[r],n[++r],n[++r]);g.__c&&g.__c(t,e),e.some(function(i){try{e=i.__h,i.__h=[],e.some(function(o){o.call(i)})}catch(o){g.__e(o,i.__v)}})}function Me(e){return typeof e!="object"||e==null?e:oe(e)?e.map(Me):L({},e)}function gt(e,t,n,r,i,o,a,l,u){var d,_,s,f,p,m,E,h=n.props,$=t.props,v=t.type;if(v=="svg"?i="http://www.w3.org/2000/svg":v=="math"?i="http://www.w3.org/1998/Math/MathML":i||(i="http://www.w3.org/1999/xhtml"),o!=null){for(d=0;d<o.length;d++)if((p=o[d])&&"setAttribute"in p==!!v&&(v?p.localName==v:p.nodeType==3)){e=p,o[d]=null;break}}if(e==null){if(v==null)return document.createTextNode($);e=document.createElementNS(i,v,$.is&&$),l&&(g.__m&&g.__m(t,o),l=!1),o=null}if(v===null)h===$||l&&e.data===$||(e.data=$);else{if(o=o&&ne.call(e.childNodes),h=n.props||X,!l&&o!=null)for(h={},d=0;d<e.attributes.length;d++)h[(p=e.attributes[d]).name]=p.value;for(d in h)if(p=h[d],d!="children"){if(d=="dangerouslySetInnerHTML")s=p;else if(!(d in $)){if(d=="value"&&"defaultValue"in $||d=="checked"&&"defaultChecked"in $)continue;Q(e,d,null,p,i)}}for(d in $)p=$[d],d=="children"?f=p:d=="dangerouslySetInnerHTML"?_=p:d=="value"?m=p:d=="checked"?E=p:l&&typeof p!="function"||h[d]===p||Q(e,d,p,h[d],i);if(_)l||s&&(_.__html===s.__html||_.__html===e.innerHTML)||(e.innerHTML=_.__html),t.__k=[];else if(s&&(e.innerHTML=""),Le(t.type==="template"?e.content:e,oe(f)?f:[f],t,n,r,v=="foreignObject"?"http://www.w3.org/1999/xhtml":i,o,a,o?o[0]:n.__k&&W(n,0),l,u),o!=null)for(d=o.length;d--;)he(o[d]);l||(d="value",v=="progress"&&m==null?e.removeAttribute("value"):m!==void 0&&(m!==e[d]||v=="progress"&&!m||v=="option"&&m!==h[d])&&Q(e,d,m,h[d],i),d="checked",E!==void 0&&E!==e[d]&&Q(e,d,E,h[d],i))}return e}function be(e,t,n){try{if(typeof e=="function"){var r=typeof e.__u=="function";r&&e.__u(),r&&t==null||(e.__u=e(t))}else e.current=t}catch(i){g.__e(i,n)}}function Oe(e,t,n){var r,i;if(g.unmount&&g.unmount(e),(r=e.ref)&&(r.current&&r.current!==e.__e||be(r,null,t)),(r=e.__c)!=null){if(r.componentWillUnmount)try{r.componentWillUnmount()}catch(o){g.__e(o,t)}r.base=r.__P=null}if(r=e.__k)for(i=0;i<r.length;i++)r[i]&&Oe(r[i],t,n||typeof e.type!="function");n||he(e.__e),e.__c=e.__=e.__e=void 0}function yt(e,t,n){return this.constructor(e,n)}function ve(e,t,n){var r,i,o,a;t==document&&(t=document.documentElement),g.__&&g.__(e,t),i=(r=typeof n=="function")?null:n&&n.__k||t.__k,o=[],a=[],$e(t,e=(!r&&n||t).__k=re(ie,null,[e]),i||X,X,t.namespaceURI,!r&&n?[n]:i?null:t.firstChild?ne.call(t.childNodes):null,o,!r&&n?n:i?i.__e:t.firstChild,r,a),Fe(o,e,a)}ne=Re.slice,g={__e:function(e,t,n,r){for(var i,o,a;t=t.__;)if((i=t.__c)&&!i.__)try{if((o=i.constructor)&&o.getDerivedStateFromError!=null&&(i.setState(o.getDerivedStateFromError(e)),a=i.__d),i.componentDidCatch!=null&&(i.componentDidCatch(e,r||{}),a=i.__d),a)return i.__E=i}catch(l){e=l}throw e}},Ie=0,mt=function(e){return e!=null&&e.constructor==null},G.prototype.setState=function(e,t){var n;n=this.__s!=null&&this.__s!==this.state?this.__s:this.__s=L({},this.state),typeof e=="function"&&(e=e(L({},n),this.props)),e&&L(n,e),e!=null&&this.__v&&(t&&this._sb.push(t),Pe(this))},G.prototype.forceUpdate=function(e){this.__v&&(this.__e=!0,e&&this.__h.push(e),Pe(this))},G.prototype.render=ie,O=[],De=typeof Promise=="function"?Promise.prototype.then.bind(Promise.resolve()):setTimeout,Ae=function(e,t){return e.__v.__b-t.__v.__b},te.__r=0,Ue=/(PointerCapture)$|Capture$/i,me=0,_e=Ne(!1),fe=Ne(!0),ht=0;var Y,x,ge,Be,se=0,Xe=[],w=g,We=w.__b,je=w.__r,Ve=w.diffed,qe=w.__c,Ke=w.unmount,Je=w.__;function ke(e,t){w.__h&&w.__h(x,e,se||t),se=0;var n=x.__H||(x.__H={__:[],__h:[]});return e>=n.__.length&&n.__.push({}),n.__[e]}function b(e){return se=1,kt(Ze,e)}function kt(e,t,n){var r=ke(Y++,2);if(r.t=e,!r.__c&&(r.__=[n?n(t):Ze(void 0,t),function(l){var u=r.__N?r.__N[0]:r.__[0],d=r.t(u,l);u!==d&&(r.__N=[d,r.__[1]],r.__c.setState({}))}],r.__c=x,!x.__f)){var i=function(l,u,d){if(!r.__c.__H)return!0;var _=r.__c.__H.__.filter(function(f){return!!f.__c});if(_.every(function(f){return!f.__N}))return!o||o.call(this,l,u,d);var s=r.__c.props!==l;return _.forEach(function(f){if(f.__N){var p=f.__[0];f.__=f.__N,f.__N=void 0,p!==f.__[0]&&(s=!0)}}),o&&o.call(this,l,u,d)||s};x.__f=!0;var o=x.shouldComponentUpdate,a=x.componentWillUpdate;x.componentWillUpdate=function(l,u,d){if(this.__e){var _=o;o=void 0,i(l,u,d),o=_}a&&a.call(this,l,u,d)},x.shouldComponentUpdate=i}return r.__N||r.__}function P(e,t){var n=ke(Y++,3);!w.__s&&Ye(n.__H,t)&&(n.__=e,n.u=t,x.__H.__h.push(n))}function j(e){return se=5,xt(function(){return{current:e}},[])}function xt(e,t){var n=ke(Y++,7);return Ye(n.__H,t)&&(n.__=e(),n.__H=t,n.__h=e),n.__}function wt(){for(var e;e=Xe.shift();)if(e.__P&&e.__H)try{e.__H.__h.forEach(ae),e.__H.__h.forEach(ye),e.__H.__h=[]}catch(t){e.__H.__h=[],w.__e(t,e.__v)}}w.__b=function(e){x=null,We&&We(e)},w.__=function(e,t){e&&t.__k&&t.__k.__m&&(e.__m=t.__k.__m),Je&&Je(e,t)},w.__r=function(e){je&&je(e),Y=0;var t=(x=e.__c).__H;t&&(ge===x?(t.__h=[],x.__h=[],t.__.forEach(function(n){n.__N&&(n.__=n.__N),n.u=n.__N=void 0})):(t.__h.forEach(ae),t.__h.forEach(ye),t.__h=[],Y=0)),ge=x},w.diffed=function(e){Ve&&Ve(e);var t=e.__c;t&&t.__H&&(t.__H.__h.length&&(Xe.push(t)!==1&&Be===w.requestAnimationFrame||((Be=w.requestAnimationFrame)||Ct)(wt)),t.__H.__.forEach(function(n){n.u&&(n.__H=n.u),n.u=void 0})),ge=x=null},w.__c=function(e,t){t.some(function(n){try{n.__h.forEach(ae),n.__h=n.__h.filter(function(r){return!r.__||ye(r)})}catch(r){t.some(function(i){i.__h&&(i.__h=[])}),t=[],w.__e(r,n.__v)}}),qe&&qe(e,t)},w.unmount=function(e){Ke&&Ke(e);var t,n=e.__c;n&&n.__H&&(n.__H.__.forEach(function(r){try{ae(r)}catch(i){t=i}}),n.__H=void 0,t&&w.__e(t,n.__v))};var Ge=typeof requestAnimationFrame=="function";function Ct(e){var t,n=function(){clearTimeout(r),Ge&&cancelAnimationFrame(t),setTimeout(e)},r=setTimeout(n,100);Ge&&(t=requestAnimationFrame(n))}function ae(e){var t=x,n=e.__c;typeof n=="function"&&(e.__c=void 0,n()),x=t}function ye(e){var t=x;e.__c=e.__(),x=t}function Ye(e,t){return!e||e.length!==t.length||t.some(function(n,r){return n!==e[r]})}function Ze(e,t){return typeof t=="function"?t(e):t}var xe="audiences.console.token",H={get:()=>sessionStorage.getItem(xe)||"",set:e=>sessionStorage.setItem(xe,e),clear:()=>sessionStorage.removeItem(xe)},V=class extends Error{constructor(t,n){super(n.message||`HTTP ${t}`),this.status=t,this.error=n}describe(){let{reason:t="",message:n=this.message}=this.error;return this.status===403?`Refused by the server (403 ${t}): ${n}`:this.status===401?`Not signed in (401 ${t}): ${n}`:`${n} (${this.status} ${t})`}},Qe=()=>{};function et(e){Qe=e}async function le(e,t,n){let r={Accept:"application/json"},i=H.get();i&&(r.Authorization=`Bearer ${i}`),n!==void 0&&(r["Content-Type"]="application/json");let o;try{o=await fetch(`/console/api${t}`,{method:e,headers:r,body:n===void 0?void 0:JSON.stringify(n),credentials:"omit",cache:"no-store"})}catch(u){throw new V(0,{reason:"UNREACHABLE",message:`the server could not be reached: ${u.message}`})}let a=await o.text(),l={};try{l=a?JSON.parse(a):{}}catch{l={error:{message:a}}}if(!o.ok){let u=new V(o.status,l.error||{});throw o.status===401&&Qe(u),u}return l}var S=e=>le("GET",e),B=(e,t)=>le("POST",e,t??{}),Z=(e,t)=>le("PATCH",e,t),tt=e=>le("DELETE",e),ce=e=>{let t=new URLSearchParams;for(let[r,i]of Object.entries(e))i!==""&&i!=null&&t.set(r,i);let n=t.toString();return n?`?${n}`:""};var ot=function(e,t,n,r){var i;t[0]=0;for(var o=1;o<t.length;o++){var a=t[o++],l=t[o]?(t[0]|=a?1:2,n[t[o++]]):t[++o];a===3?r[0]=l:a===4?r[1]=Object.assign(r[1]||{},l):a===5?(r[1]=r[1]||{})[t[++o]]=l:a===6?r[1][t[++o]]+=l+"":a?(i=e.apply(l,ot(e,l,n,["",null])),r.push(i),l[0]?t[0]|=2:(t[o-2]=0,t[o]=i)):r.push(l)}return r},nt=new Map;function rt(e){var t=nt.get(this);return t||(t=new Map,nt.set(this,t)),(t=ot(this,t.get(e)||(t.set(e,t=function(n){for(var r,i,o=1,a="",l="",u=[0],d=function(f){o===1&&(f||(a=a.replace(/^\s*\n\s*|\s*\n\s*$/g,"")))?u.push(0,f,a):o===3&&(f||a)?(u.push(3,f,a),o=2):o===2&&a==="..."&&f?u.push(4,f,0):o===2&&a&&!f?u.push(5,0,!0,a):o>=5&&((a||!f&&o===5)&&(u.push(o,0,a,i),o=6),f&&(u.push(o,f,0,i),o=6)),a=""},_=0;_<n.length;_++){_&&(o===1&&d(),d(_));for(var s=0;s<n[_].length;s++)r=n[_][s],o===1?r==="<"?(d(),u=[u],o=3):a+=r:o===4?a==="--"&&r===">"?(o=1,a=""):a=r+a[0]:l?r===l?l="":a+=r:r==='"'||r==="'"?l=r:r===">"?(d(),o=1):o&&(r==="="?(o=5,i=a,a=""):r==="/"&&(o<5||n[_][s+1]===">")?(d(),o===3&&(u=u[0]),o=u,(u=u[0]).push(2,0,o),o=0):r===" "||r==="	"||r===`
`||r==="\r"?(d(),o=2):a+=r),o===3&&a==="!--"&&(o=4,u=u[0])}return d(),u}(e)),t),arguments,[])).length>1?t:t[0]}var c=rt.bind(re);var I=e=>e===void 0?"":JSON.stringify(e);function k(e){return e?e.replace("T"," ").replace(/\.\d+Z$/," UTC"):"—"}function ue(e){return e==null?"—":e<1e3?`${e} ms`:e<12e4?`${(e/1e3).toFixed(1)} s`:e<72e5?`${Math.round(e/6e4)} min`:`${(e/36e5).toFixed(1)} h`}var A=e=>e instanceof V?e.describe():String(e);function q({notice:e}){if(!e)return null;let t=e.kind==="error";return c`<p class=${`notice ${t?"error":"ok"}`} role=${t?"alert":"status"}>${e.text}</p>`}function D(e,t,n=0){let[r,i]=b({data:null,error:null,loading:!0}),o=j(0),a=async()=>{let l=++o.current;try{let u=await e();l===o.current&&i({data:u,error:null,loading:!1})}catch(u){l===o.current&&i(d=>({data:d.data,error:u,loading:!1}))}};return P(()=>{i(l=>({...l,loading:!0})),a()},t),P(()=>{if(!n)return;let l=setInterval(()=>{document.hidden||a()},n);return()=>clearInterval(l)},[...t,n]),{...r,reload:a}}function we(e,t,n){P(()=>{let r=setTimeout(e,n);return()=>clearTimeout(r)},t)}function z({error:e}){return e?c`<p class="notice error" role="alert">${A(e)}</p>`:null}function de({points:e,label:t,width:n=320,height:r=90}){if(!e||!e.length)return c`<p class="muted">No size history yet.</p>`;let i={left:34,right:6,top:8,bottom:18},o=e.map(h=>h.size),a=Math.max(1,...o),l=Math.min(0,...o),u=n-i.left-i.right,d=r-i.top-i.bottom,_=h=>i.left+(e.length===1?u:h*u/(e.length-1)),s=h=>i.top+d-(h-l)/(a-l||1)*d,f=e.map((h,$)=>`${_($).toFixed(1)},${s(h.size).toFixed(1)}`).join(" "),p=e[0].start.slice(5,16).replace("T"," "),m=e[e.length-1].start.slice(5,16).replace("T"," "),E=e[e.length-1].size;return c`
    <svg class="chart" viewBox=${`0 0 ${n} ${r}`} role="img" aria-label=${`${t}: size ${E} now, from ${p} to ${m}`}>
      <title>${t}</title>
      <line x1=${i.left} y1=${i.top+d} x2=${i.left+u} y2=${i.top+d} class="axis" />
      <line x1=${i.left} y1=${i.top} x2=${i.left} y2=${i.top+d} class="axis" />
      <text x=${i.left-4} y=${i.top+8} class="tick" text-anchor="end">${a}</text>
      <text x=${i.left-4} y=${i.top+d} class="tick" text-anchor="end">${l}</text>
      <text x=${i.left} y=${r-4} class="tick">${p}</text>
      <text x=${i.left+u} y=${r-4} class="tick" text-anchor="end">${m}</text>
      <polyline points=${f} class="series" />
      ${e.map((h,$)=>c`<circle cx=${_($)} cy=${s(h.size)} r="2" class="dot"><title>${`${h.start}: ${h.size} (+${h.entered} −${h.exited})`}</title></circle>`)}
    </svg>`}var Ce=e=>`/computations/${encodeURIComponent(e.collection)}/${encodeURIComponent(e.key)}`;function St({c:e}){let{done:t,total:n}=e.backfill;return e.status!=="BACKFILLING"?c`<span class="muted">${n?`${t} / ${n}`:"—"}</span>`:c`<progress max=${n||1} value=${t} aria-label=${`${e.key} backfill`}>${t} / ${n}</progress>
    <span> ${t} / ${n}</span>`}function Et({c:e,onChanged:t,setNotice:n}){let[r,i]=b(!1),o=async(u,d,_)=>{try{await _(),n({kind:"ok",text:`${e.key}: ${d}.`})}catch(s){n({kind:"error",text:`${e.key}: could not ${u}. ${A(s)}`})}i(!1),t()},a=()=>e.enabled?o("disable","disabled",()=>Z(Ce(e),{enabled:!1})):o("enable","enabled",()=>Z(Ce(e),{enabled:!0})),l=()=>o("delete","deleted",()=>tt(Ce(e)));return c`
    <tr data-key=${e.key}>
      <th scope="row"><a href=${`#/builder/${e.collection}/${encodeURIComponent(e.key)}`}>${e.name}</a>
        <div class="muted mono">${e.key}</div></th>
      <td>${e.kind==="audience"?"audience":"computed trait"}<div class="muted">${e.collection}</div></td>
      <td><span class=${`status s-${e.status.toLowerCase()}`}>${e.status}</span>
        ${e.error&&c`<div class="error-text">${e.error}</div>`}</td>
      <td class="num size">${e.size}</td>
      <td><${St} c=${e} /></td>
      <td>${k(e.last_computed)}</td>
      <td class="chart-cell"><${de} points=${e.sizes} label=${`${e.key} size, last 48 hours`} /></td>
      <td class="actions">
        <button type="button" onClick=${a}>${e.enabled?"Disable":"Enable"}<span class="sr"> ${e.key}</span></button>
        ${r?c`<button type="button" class="danger" onClick=${l}>Confirm delete<span class="sr"> ${e.key}</span></button>
                 <button type="button" onClick=${()=>i(!1)}>Keep</button>`:c`<button type="button" onClick=${()=>i(!0)}>Delete<span class="sr"> ${e.key}</span></button>`}
      </td>
    </tr>`}function it(){let[e,t]=b(null),{data:n,error:r,reload:i}=D(()=>S("/computations?sizes=hourly"),[],2e3),o=n?n.computations:[];return c`
    <section aria-labelledby="list-title">
      <div class="title-row">
        <h1 id="list-title">Audiences and computed traits</h1>
        <a class="button" href="#/builder/new">New definition</a>
      </div>
      ${n&&c`<p class="muted">Evaluator clock: ${k(n.clock.now)}${n.clock.manual?" (manual)":""}</p>`}
      <${q} notice=${e} />
      <${z} error=${r} />
      ${n&&!o.length&&c`<p>No definitions yet. <a href="#/builder/new">Write the first one</a>.</p>`}
      ${o.length>0&&c`
        <div class="table-wrap">
          <table class="computations">
            <caption class="sr">Each definition's status, size, backfill and size over time</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Status</th>
              <th scope="col">Size</th><th scope="col">Backfill</th><th scope="col">Last computed</th>
              <th scope="col">Size, 48 h</th><th scope="col">Actions</th></tr></thead>
            <tbody>${o.map(a=>c`<${Et} key=${a.id} c=${a} onChanged=${i} setNotice=${t} />`)}</tbody>
          </table>
        </div>`}
    </section>`}var Pt="event('Order Completed').within(30 days).count() >= 1";function zt({summary:e}){if(!e)return null;let t=[["Events",e.events],["Properties",e.properties],["Context",e.context_paths],["Traits",e.traits]],n=e.lookback_unbounded?"all history":e.lookback_ms?ue(e.lookback_ms):"none";return c`
    <dl class="summary" aria-label="Dependency summary">
      ${t.map(([r,i])=>c`<dt>${r}</dt><dd>${i.length?i.join(", "):"—"}</dd>`)}
      <dt>Looks back</dt><dd>${n}</dd>
    </dl>`}function Nt({problem:e}){let[t]=e.message.split("; did you mean");return c`
    <div class="problem" role="alert" aria-live="assertive">
      <p><b>${e.reason}</b>${e.line?` at line ${e.line}, column ${e.column}`:""}: ${t}</p>
      ${e.caret_display&&c`<pre class="caret" aria-label="Where the error is">${e.caret_display}</pre>`}
      ${e.hint&&c`<p class="hint">Hint: ${e.hint}</p>`}
    </div>`}var It=e=>e?e.identifiers[0]||e.id:"(gone)";function at({items:e,value:t=!0}){return e.length?c`<ul class="samples">${e.map(n=>c`
    <li><a href=${`#/profiles/${n.profile?.collection||"users"}/${encodeURIComponent(n.profile?.id||"")}`}>${It(n.profile)}</a>
      ${t&&n.value!==!0&&c` <span class="mono">${I(n.value)}</span>`}
      ${"old"in n&&c` <span class="mono muted">${I(n.old)} → ${I(n.new)}</span>`}</li>`)}</ul>`:c`<p class="muted">No sample.</p>`}function Dt({diff:e}){return c`
    <section class="diff" aria-labelledby="diff-title">
      <h3 id="diff-title">If saved, against ${e.compare_key} as stored</h3>
      <div class="columns">
        ${["entering","exiting","staying"].map(t=>c`
          <div class=${`outcome ${t}`} data-outcome=${t}>
            <h4>${t[0].toUpperCase()+t.slice(1)}: <span class="count">${e[t]}</span></h4>
            <${at} items=${e.samples[t]||[]} value=${!1} />
          </div>`)}
      </div>
      ${e.changed>0&&c`<p>${e.changed} staying profiles would change value.</p>`}
    </section>`}function At({target:e,version:t,onRolledBack:n,setNotice:r}){let{data:i,error:o}=D(()=>S(`${e}/versions`),[e,t]),a=async l=>{try{await B(`${e}/rollback`,{version:l}),r({kind:"ok",text:`Rolled back to version ${l}: saved as a new version.`}),n()}catch(u){r({kind:"error",text:`Rollback failed. ${A(u)}`})}};return c`
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <${z} error=${o} />
      ${i&&c`<div class="table-wrap"><table>
        <thead><tr><th scope="col">Version</th><th scope="col">Saved</th><th scope="col">By</th>
          <th scope="col">Size after backfill</th><th scope="col">Definition</th><th scope="col"></th></tr></thead>
        <tbody>${i.versions.map(l=>c`<tr>
          <th scope="row">${l.version}${l.current?" (current)":""}</th><td>${k(l.created)}</td><td>${l.actor||"—"}</td>
          <td class="num">${l.size_after_backfill??"—"}</td><td><code>${l.definition}</code></td>
          <td>${!l.current&&c`<button type="button" onClick=${()=>a(l.version)}>Roll back to version ${l.version}</button>`}</td>
        </tr>`)}</tbody></table></div>`}
    </section>`}function Ut({target:e,version:t}){let[n,r]=b("hourly"),{data:i,error:o}=D(()=>S(`${e}/sizes?interval=${n}`),[e,n,t]),a=i?i.points.reduce((l,u)=>l+u.entered+u.exited,0):0;return c`
    <section aria-labelledby="sizes-title">
      <h2 id="sizes-title">Size over time</h2>
      <label for="size-interval">Interval</label>
      <select id="size-interval" value=${n} onChange=${l=>r(l.target.value)}>
        <option value="hourly">Hourly, last 48 hours</option><option value="daily">Daily, last 30 days</option></select>
      <${z} error=${o} />
      ${i&&c`<p>Size now <b>${i.size}</b>; ${a} entries and exits in the range shown.</p>
        <${de} points=${i.points} label=${`${i.key} size, ${n}`} width=${640} height=${160} />`}
    </section>`}function st({args:e}){let t=e.length===2,[n,r]=t?e:["users",""],i=`/computations/${encodeURIComponent(n)}/${encodeURIComponent(r)}`,[o,a]=b({kind:"audience",collection:"users",key:"",name:"",description:"",definition:t?"":Pt,include_anonymous_users:!1,enabled:!0}),[l,u]=b(null),[d,_]=b(null),[s,f]=b(null),[p,m]=b(!1),[E,h]=b(null),[$,v]=b(null),N=y=>R=>a({...o,[y]:R.target.type==="checkbox"?R.target.checked:R.target.value}),U=async()=>{try{let{computation:y}=await S(i);u(y),a({kind:y.kind,collection:y.collection,key:y.key,name:y.name,description:y.description,definition:y.definition,include_anonymous_users:!!y.options.include_anonymous_users,enabled:y.enabled})}catch(y){v(y)}};P(()=>{f(null),_(null),h(null),t&&U()},[i]),we(async()=>{if(!o.definition.trim()){_(null);return}try{_(await B("/validate",{kind:o.kind,collection:o.collection,key:o.key,definition:o.definition}))}catch(y){_({valid:!1,failure:y})}},[o.definition,o.kind,o.collection,o.key],300);let F=async()=>{m(!0);try{f(await B("/preview",{kind:o.kind,collection:o.collection,definition:o.definition,include_anonymous_users:o.include_anonymous_users,sample_size:10,compare_key:t?r:""}))}catch(y){f({failure:y})}m(!1)};we(()=>{d&&d.valid&&F()},[d,o.include_anonymous_users],400);let M=async y=>{y.preventDefault();let R={include_anonymous_users:o.include_anonymous_users};try{if(t){let{computation:C}=await Z(i,{name:o.name,description:o.description,definition:o.definition,options:{...l.options,...R}});u(C),h({kind:"ok",text:`Saved ${C.key} as version ${C.version}; it is ${C.status}.`})}else{let{computation:C}=await B("/computations",{kind:o.kind,collection:o.collection,key:o.key,name:o.name,description:o.description,definition:o.definition,enabled:o.enabled,options:R});location.hash=`#/audiences/${encodeURIComponent(C.key)}`}}catch(C){h({kind:"error",text:`Not saved. ${A(C)}`}),C.error&&C.error.definition&&_({valid:!1,error:C.error.definition})}};return c`
    <section aria-labelledby="builder-title">
      <h1 id="builder-title">${t?`Edit ${r}`:"New audience or computed trait"}</h1>
      <${z} error=${$} />
      <form class="builder" onSubmit=${M}>
        <div class="fields">
          <label for="f-kind">Kind</label>
          <select id="f-kind" value=${o.kind} onChange=${N("kind")} disabled=${t}>
            <option value="audience">Audience</option><option value="computed_trait">Computed trait</option></select>
          <label for="f-collection">Collection</label>
          <select id="f-collection" value=${o.collection} onChange=${N("collection")} disabled=${t}>
            <option value="users">Users</option><option value="accounts">Accounts</option></select>
          <label for="f-key">Key</label>
          <input id="f-key" value=${o.key} onInput=${N("key")} readOnly=${t} required pattern="[a-z][a-z0-9_]*"
                 aria-describedby="f-key-help" />
          <span id="f-key-help" class="help">snake_case: a–z, 0–9 and _, starting with a letter; fixed once saved.</span>
          <label for="f-name">Name</label>
          <input id="f-name" value=${o.name} onInput=${N("name")} />
          <label for="f-description">Description</label>
          <input id="f-description" value=${o.description} onInput=${N("description")} />
          <label class="check"><input type="checkbox" checked=${o.include_anonymous_users}
            onChange=${N("include_anonymous_users")} /> Include anonymous users</label>
          ${!t&&c`<label class="check"><input type="checkbox" checked=${o.enabled} onChange=${N("enabled")} /> Enabled</label>`}
        </div>
        <label for="f-definition">Definition</label>
        <textarea id="f-definition" class="mono" rows="6" spellcheck=${!1} value=${o.definition}
                  onInput=${N("definition")} aria-describedby="validation"></textarea>
        <div id="validation" class="validation" aria-live="polite">
          ${d&&d.valid&&c`<p class="valid">Valid.</p>`}
          ${d&&d.error&&c`<${Nt} problem=${d.error} />`}
          ${d&&d.failure&&c`<${z} error=${d.failure} />`}
          ${d&&d.summary&&c`<h2>Reads</h2><${zt} summary=${d.summary} />`}
        </div>
        <div class="buttons">
          <button type="button" onClick=${F} disabled=${p}>Preview</button>
          <button type="submit" class="primary">${t?"Save changes":"Save"}</button>
          ${t&&c`<a href="#/builder/new">New definition</a>`}
        </div>
        <${q} notice=${E} />
      </form>
      <section class="preview" aria-labelledby="preview-title" aria-live="polite" aria-busy=${p}>
        <h2 id="preview-title">Preview</h2>
        ${!s&&c`<p class="muted">A valid definition is previewed over every profile as it stands now.</p>`}
        ${s&&s.failure&&c`<${z} error=${s.failure} />`}
        ${s&&!s.failure&&c`
          <p class="preview-count"><b class="count">${s.count}</b> ${o.kind==="audience"?"profiles match":"profiles have a value"} (evaluated ${k(s.evaluated)})</p>
          <${at} items=${s.samples} />
          ${s.diff&&c`<${Dt} diff=${s.diff} />`}`}
      </section>
      ${t&&l&&c`<${Ut} target=${i} version=${l.version} />`}
      ${t&&l&&c`<${At} target=${i} version=${l.version} onRolledBack=${U} setNotice=${h} />`}
    </section>`}function Rt({items:e}){return e.length?c`<div class="table-wrap"><table class="connections">
    <thead><tr><th scope="col">Definition</th><th scope="col">Phase</th><th scope="col">Pending</th>
      <th scope="col">Delivered</th><th scope="col">Retrying</th><th scope="col">Dead</th><th scope="col">Lag</th>
      <th scope="col">Last delivery</th><th scope="col">Last failure</th></tr></thead>
    <tbody>${e.map(t=>c`<tr>
      <th scope="row">${t.computation.key} <span class="muted">${t.computation.collection}</span></th>
      <td>${t.phase}</td><td class="num">${t.pending}</td><td class="num">${t.delivered}</td>
      <td class="num">${t.retrying}</td><td class="num">${t.dead}</td><td>${ue(t.lag_ms)}</td>
      <td>${k(t.last_delivery)}</td>
      <td>${t.last_error?c`<span class="error-text">${t.last_error}</span> <span class="muted">${k(t.last_error_at)}</span>`:"—"}</td>
    </tr>`)}</tbody></table></div>`:c`<p class="muted">Nothing connected.</p>`}function Tt({destination:e,onRedriven:t,setNotice:n}){let r=e.dead_letters,i=async o=>{try{let{redriven:a}=await B(`/destinations/${encodeURIComponent(e.key)}/redrive`,{ids:o});n({kind:"ok",text:`${e.key}: ${a} dead letter${a===1?"":"s"} put back in the queue.`})}catch(a){n({kind:"error",text:`${e.key}: redrive failed. ${A(a)}`})}t()};return c`
    <h3>Dead letters (${r.length})</h3>
    ${!r.length&&c`<p class="muted">None.</p>`}
    ${r.length>0&&c`
      <button type="button" onClick=${()=>i([])}>Redrive all<span class="sr"> of ${e.key}</span></button>
      <div class="table-wrap"><table class="dead-letters">
        <thead><tr><th scope="col">Id</th><th scope="col">Definition</th><th scope="col">Profile</th>
          <th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Parked</th><th scope="col"></th></tr></thead>
        <tbody>${r.map(o=>c`<tr data-id=${o.id}>
          <th scope="row" class="mono">${o.id}</th><td>${o.computation.key}</td>
          <td><a href=${`#/profiles/${o.computation.collection}/${encodeURIComponent(o.profile_id)}`}>${o.profile_id}</a></td>
          <td class="num">${o.attempts}</td><td class="error-text">${o.last_error}</td><td>${k(o.dead_at)}</td>
          <td><button type="button" onClick=${()=>i([o.id])}>Redrive<span class="sr"> ${o.id}</span></button></td>
        </tr>`)}</tbody></table></div>`}`}function lt(){let[e,t]=b(null),{data:n,error:r,reload:i}=D(()=>S("/destinations"),[],3e3),o=n?n.destinations:[];return c`
    <section aria-labelledby="destinations-title">
      <div class="title-row">
        <h1 id="destinations-title">Destinations</h1>
        <button type="button" onClick=${i}>Refresh</button>
      </div>
      <${q} notice=${e} />
      <${z} error=${r} />
      ${n&&!o.length&&c`<p>No destinations. Create one with <code>audiences destinations create</code>.</p>`}
      ${o.map(a=>c`
        <article class="destination" data-key=${a.key} aria-labelledby=${`d-${a.key}`}>
          <h2 id=${`d-${a.key}`}>${a.name||a.key} <span class="muted">${a.kind}${a.enabled?"":" · disabled"}</span></h2>
          <p class="muted mono">${a.config.url||a.config.table_prefix||a.key}</p>
          <h3>Connections</h3>
          <${Rt} items=${a.connections} />
          <${Tt} destination=${a} onRedriven=${i} setNotice=${t} />
        </article>`)}
    </section>`}function Lt({stream:e}){return c`
    <div class="stream">
      <p><b>${e.event}</b>: ${e.seen} seen, ${e.count} kept</p>
      ${e.filters.length>0&&c`<ol class="filters">${e.filters.map(t=>c`
        <li><code>${t.filter}</code> leaves ${t.remaining}</li>`)}</ol>`}
      ${e.events.length>0&&c`<div class="table-wrap"><table class="evidence">
        <thead><tr><th scope="col">Time</th><th scope="col">Message</th><th scope="col">Value</th><th scope="col">Read</th></tr></thead>
        <tbody>${e.events.map(t=>c`<tr>
          <td>${k(t.timestamp)}</td><td class="mono">${t.message_id}</td><td class="mono">${I(t.value)}</td>
          <td class="mono">${Object.entries(t.read).map(([n,r])=>`${n} = ${I(r)}`).join("; ")}</td></tr>`)}
        </tbody></table></div>`}
    </div>`}function Se({node:e}){let t=e.value===!0?"holds":e.value===!1?"fails":"value";return c`
    <li class=${`node ${t}`}>
      <span class="verdict">${e.value===!0?"✓":e.value===!1?"✗":"="}</span>
      <code>${e.text}</code> <span class="mono value">${I(e.value)}</span>
      ${e.trait&&c` <span class="muted">(${e.trait.class.replace("_"," ")} ${e.trait.key})</span>`}
      ${e.stream&&c`<${Lt} stream=${e.stream} />`}
      ${e.users&&c`<p class="muted">${e.users_satisfying} of ${e.users_total} linked users satisfy it</p>
        <ul>${e.users.map(n=>c`<li>${n.profile?.identifiers[0]||n.profile?.id}: ${n.satisfied?"yes":"no"}
          <ul class="tree"><${Se} node=${n.node} /></ul></li>`)}</ul>`}
      ${e.children.length>0&&c`<ul class="tree">${e.children.map(n=>c`<${Se} node=${n} />`)}</ul>`}
    </li>`}function ct({collection:e,definitionKey:t,address:n,onClose:r}){let i=j(null);P(()=>i.current?.focus(),[t,n]);let{data:o,error:a}=D(()=>S(`/explain/${encodeURIComponent(e)}/${encodeURIComponent(t)}${ce({profile:n})}`),[e,t,n]);return c`
    <section class="explain" aria-labelledby="explain-title" tabindex="-1" ref=${i}>
      <div class="title-row">
        <h2 id="explain-title">Why: ${t}</h2>
        <button type="button" onClick=${r}>Close</button>
      </div>
      <${z} error=${a} />
      ${o&&c`
        <p>Value <b class="mono">${I(o.value)}</b> at ${k(o.at)}; stored <span class="mono">${I(o.stored)}</span>
          ${o.pending?" (waiting for a tick)":""}${o.anonymous_excluded?"; anonymous users are left out":""}</p>
        <pre class="definition">${o.definition.text}</pre>
        <ul class="tree root"><${Se} node=${o.root} /></ul>
        <p class="next">${o.next_change.summary}</p>`}
    </section>`}var ut=(e,t,n,r={})=>S(`/profiles/${e}/${n}${ce({address:t,...r})}`);function K({collection:e,address:t,name:n,params:r={},render:i,title:o}){let[a,l]=b([""]),u=a[a.length-1],d=JSON.stringify(r);P(()=>l([""]),[e,t,d]);let{data:_,error:s}=D(()=>ut(e,t,n,{...r,next:u}),[e,t,d,u]);return c`
    <section class="part" aria-label=${o}>
      <${z} error=${s} />
      ${_&&(_.items.length?i(_.items):c`<p class="muted">None.</p>`)}
      <div class="pager">
        ${a.length>1&&c`<button type="button" onClick=${()=>l(a.slice(0,-1))}>Previous page</button>`}
        ${_&&_.next&&c`<button type="button" onClick=${()=>l([...a,_.next])}>Next page</button>`}
      </div>
    </section>`}function Ht({collection:e,address:t}){let[n,r]=b("");return c`
    <h2>Traits</h2>
    <label for="trait-class">Class</label>
    <select id="trait-class" value=${n} onChange=${i=>r(i.target.value)}>
      <option value="">All</option><option value="custom">Custom</option>
      <option value="computed_trait">Computed</option><option value="audience">Audience</option></select>
    <${K} collection=${e} address=${t} name="traits" params=${{class:n,limit:50}} title="Traits"
      render=${i=>c`<div class="table-wrap"><table><thead><tr><th scope="col">Key</th><th scope="col">Value</th>
        <th scope="col">Class</th><th scope="col">Updated</th></tr></thead><tbody>${i.map(o=>c`
        <tr><th scope="row" class="mono">${o.key}</th><td class="mono">${I(o.value)}</td><td>${o.class.replace("_"," ")}</td>
          <td>${k(o.updated)}</td></tr>`)}</tbody></table></div>`} />`}function Ft({collection:e,address:t}){let[n,r]=b({include:"",exclude:"",start:"",end:"",sort:"desc"}),[i,o]=b(n),a=l=>u=>r({...n,[l]:u.target.value});return c`
    <h2>Events</h2>
    <form class="filters-form" onSubmit=${l=>{l.preventDefault(),o(n)}}>
      <label>Only events <input value=${n.include} onInput=${a("include")} placeholder="Signed Up, Order Completed" /></label>
      <label>Except <input value=${n.exclude} onInput=${a("exclude")} /></label>
      <label>From <input type="date" value=${n.start} onInput=${a("start")} /></label>
      <label>Until <input type="date" value=${n.end} onInput=${a("end")} /></label>
      <label>Order <select value=${n.sort} onChange=${a("sort")}><option value="desc">Newest first</option>
        <option value="asc">Oldest first</option></select></label>
      <button type="submit">Filter events</button>
    </form>
    <${K} collection=${e} address=${t} name="events" params=${{...i,limit:20}} title="Events"
      render=${l=>c`<ol class="events">${l.map(u=>c`<li>
        <b>${u.event||u.type}</b> <span class="muted">${u.type} · ${k(u.timestamp)} · ${u.message_id}</span>
        <details><summary>Properties and context</summary><pre class="mono">${u.properties}</pre><pre class="mono">${u.context}</pre></details>
      </li>`)}</ol>`} />`}function dt({args:e}){let[t="users",n=""]=e,[r,i]=b({collection:t,address:n}),[o,a]=b(null);P(()=>{i({collection:t,address:n}),a(null)},[t,n]);let l=p=>{p.preventDefault(),location.hash=`#/profiles/${r.collection}/${encodeURIComponent(r.address.trim())}`},u=n!=="",d=D(()=>u?ut(t,n,"metadata"):Promise.resolve(null),[t,n]),s=(D(()=>S("/computations"),[]).data?.computations||[]).filter(p=>p.collection===t),f={collection:t,address:n};return c`
    <section aria-labelledby="profiles-title">
      <h1 id="profiles-title">Profile explorer</h1>
      <form class="lookup" onSubmit=${l} role="search">
        <label for="p-collection">Collection</label>
        <select id="p-collection" value=${r.collection} onChange=${p=>i({...r,collection:p.target.value})}>
          <option value="users">Users</option><option value="accounts">Accounts</option></select>
        <label for="p-address">Profile (type:value or prf_…)</label>
        <input id="p-address" value=${r.address} required placeholder="email:ada@example.com"
               onInput=${p=>i({...r,address:p.target.value})} />
        <button type="submit">Find</button>
      </form>
      ${u&&c`
        <${z} error=${d.error} />
        ${d.data&&c`
          <p class="profile-head">Profile <b class="mono">${d.data.profile_id}</b> · created ${k(d.data.created)} ·
            last message ${k(d.data.last_message)}${d.data.merged.length?` · merged from ${d.data.merged.join(", ")}`:""}</p>
          ${o&&c`<${ct} collection=${t} definitionKey=${o} address=${n} onClose=${()=>a(null)} />`}
          <div class="grid">
            <div>
              <h2>Audiences</h2>
              <${K} ...${f} name="memberships" params=${{limit:50}} title="Audience memberships"
                render=${p=>c`<ul class="memberships">${p.map(m=>c`<li data-key=${m.key}>
                  <b>${m.name}</b> <span class="muted mono">${m.key}</span> · since ${k(m.entered)}
                  <button type="button" onClick=${()=>a(m.key)}>Why<span class="sr"> is this profile in ${m.key}</span></button></li>`)}</ul>`} />
              <form class="why-other" onSubmit=${p=>{p.preventDefault(),a(p.target.elements.other.value)}}>
                <label for="why-other">Explain any definition</label>
                <select id="why-other" name="other">${s.map(p=>c`<option value=${p.key}>${p.key}</option>`)}</select>
                <button type="submit" disabled=${!s.length}>Explain</button>
              </form>
              <h2>Membership history</h2>
              <${K} ...${f} name="history" params=${{limit:20}} title="Membership history"
                render=${p=>c`<ol class="history">${p.map(m=>c`<li>
                  ${k(m.at)} · <b>${m.change}</b> ${m.key} <span class="mono muted">${I(m.old)} → ${I(m.new)}</span></li>`)}</ol>`} />
              <h2>Identifiers</h2>
              <${K} ...${f} name="identifiers" params=${{limit:50}} title="Identifiers"
                render=${p=>c`<ul>${p.map(m=>c`<li class="mono">${m.type}:${m.value}
                  <span class="muted"> · ${k(m.added)}</span></li>`)}</ul>`} />
              <h2>Links</h2>
              <${K} ...${f} name="links" params=${{limit:50}} title="Linked profiles"
                render=${p=>c`<ul>${p.map(m=>c`<li>
                  <a href=${`#/profiles/${m.collection}/${encodeURIComponent(m.id)}`}>${m.identifiers[0]||m.id}</a>
                  <span class="muted"> · ${m.collection} · linked ${k(m.linked)}</span></li>`)}</ul>`} />
            </div>
            <div>
              <${Ht} ...${f} />
              <${Ft} ...${f} />
            </div>
          </div>`}`}
    </section>`}function pt(){let e=location.hash.replace(/^#\/?/,"").split("/").map(decodeURIComponent);return{page:e[0]||"audiences",args:e.slice(1)}}function Mt({onSession:e,reason:t}){let[n,r]=b(""),[i,o]=b(t||"");return c`
    <main class="signin">
      <h1>Audiences console</h1>
      <form onSubmit=${async l=>{l.preventDefault(),H.set(n.trim());try{e(await S("/session"))}catch(u){H.clear(),o(A(u))}}}>
        <label for="token">Token (admin, or read for read-only pages)</label>
        <input id="token" name="token" type="password" autocomplete="off" required value=${n}
               onInput=${l=>r(l.target.value)} />
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">The token stays in this tab (sessionStorage) and is sent only to this server.</p>
      ${i&&c`<p class="notice error" role="alert">${i}</p>`}
    </main>`}var _t=[["audiences","Audiences & traits"],["builder","Builder"],["profiles","Profiles"],["destinations","Destinations"]];function Ot({session:e,onSignOut:t}){let[n,r]=b(pt());P(()=>{let u=()=>r(pt());return addEventListener("hashchange",u),()=>removeEventListener("hashchange",u)},[]);let{page:i,args:o}=n,a=j(!0);P(()=>{let u=(_t.find(([d])=>d===i)||[i,i])[1];if(document.title=`${u} · Audiences console`,a.current){a.current=!1;return}document.getElementById("main")?.focus()},[i,o.join("/")]);let l={audiences:()=>c`<${it} session=${e} />`,builder:()=>c`<${st} session=${e} args=${o} key=${o.join("/")} />`,profiles:()=>c`<${dt} session=${e} args=${o} />`,destinations:()=>c`<${lt} session=${e} />`}[i];return c`
    <header class="top">
      <a class="skip" href="#main">Skip to content</a>
      <strong class="brand">Audiences</strong>
      <nav aria-label="Pages">
        ${_t.map(([u,d])=>c`
          <a href=${`#/${u==="builder"?"builder/new":u}`} aria-current=${i===u?"page":void 0}>${d}</a>`)}
      </nav>
      <span class="who">Space <b>${e.space}</b> · <span class="scope">${e.scope}</span> token</span>
      <button type="button" class="link" onClick=${t}>Sign out</button>
    </header>
    ${!e.can_write&&c`
      <p class="banner" role="note">Signed in with a read token: these pages are read-only, and the server refuses any change.</p>`}
    <main id="main" tabindex="-1">${l?l():c`<p role="alert">No page ${i}.</p>`}</main>`}function Bt(){let[e,t]=b(null),[n,r]=b(!!H.get()),[i,o]=b("");P(()=>{et(l=>{H.clear(),t(null),o(A(l))}),H.get()&&S("/session").then(t,l=>o(A(l))).finally(()=>r(!1))},[]);let a=()=>{H.clear(),t(null),o("")};return n?c`<p>Checking the session…</p>`:e?c`<${Ot} session=${e} onSignOut=${a} />`:c`<${Mt} onSession=${t} reason=${i} />`}var ft=document.getElementById("app");ft.textContent="";ve(c`<${Bt} />`,ft);
